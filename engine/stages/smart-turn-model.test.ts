import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModel } from '../../models/model-manager.ts';
import { createModelSession, type ModelSession } from '../inference/backend.ts';
import { padWithSilence, synthesizeSpeech16k } from '../inference/test-speech.ts';
import { loadFeatureExtractor } from './smart-turn-features.ts';
import { SMART_TURN_BLOCK_LENGTH, SMART_TURN_COMPLETE_THRESHOLD, SmartTurnModel } from './smart-turn-model.ts';

let wasm: ModelSession;
let native: ModelSession;
let features: Float32Array[];

beforeAll(async () => {
  const modelPath = await resolveModel('smart-turn-v3.2');
  wasm = await createModelSession('wasm', modelPath, { threads: 1 });
  native = await createModelSession('native', modelPath, { threads: 1 });
  const extractor = await loadFeatureExtractor();
  // Real speech: two finished questions, a phrase cut off mid-thought (espeak gives it a non-final
  // intonation), and a long clip that overflows the 8 s window and that the model finds ambiguous.
  const clips = [
    padWithSilence(synthesizeSpeech16k('What time is it?'), 8000, 3200, 1),
    padWithSilence(synthesizeSpeech16k('I was thinking that maybe we could, um,'), 8000, 3200, 2),
    padWithSilence(synthesizeSpeech16k('Can you help me with my order?'), 8000, 3200, 3),
    padWithSilence(
      synthesizeSpeech16k('Well, first I called the bank, then I waited on hold for twenty minutes, and after that they told me to call back tomorrow because the office was closed.'),
      1600,
      3200,
      4,
    ),
  ];
  features = clips.map((clip) => extractor.extract(clip).slice());
});
afterAll(async () => {
  await wasm?.release();
  await native?.release();
});

/**
 * Smart Turn v3.2 is int8 QDQ: 78 QuantizeLinear nodes round activations to 8 bits, and its output is
 * itself quantized (logit steps of about 0.037). Float differences of ~1e-7 between the runtimes'
 * kernels (GELU, softmax, layer norm) flip some roundings and the flips compound: WASM and native
 * differ by 0.3-0.8 in logit space, which is as much as a 1e-6 nudge of the input moves either backend
 * alone. Measured on espeak-ng speech: confident outputs (p < 0.1 or > 0.9) differ by <= 0.006, while
 * an ambiguous clip gave 0.66 native vs 0.47 WASM. So 1e-3 agreement is not attainable with this model;
 * we require 0.02 where the model is confident, and only a loose logit bound where it is not.
 */
const CONFIDENT_TOLERANCE = 0.02;
const AMBIGUOUS_LOGIT_TOLERANCE = 1.5;
const CONFIDENT = [0, 1, 2];
const AMBIGUOUS = 3;

const logit = (p: number) => Math.log(p / (1 - p));
const maxAbsDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

describe('SmartTurnModel on real speech features', () => {
  it('gives probabilities in [0, 1], one per block', async () => {
    const p = await SmartTurnModel.create(native).predict(features);
    expect(p).toHaveLength(features.length);
    for (const x of p) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(1);
    }
    // The blocks differ, so a model that ignored its input would fail here.
    expect(new Set(p.map((x) => x.toFixed(6))).size).toBe(features.length);
  });

  it('WASM and native agree at B=1 and B=3 where the model is confident', async () => {
    const onWasm = SmartTurnModel.create(wasm);
    const onNative = SmartTurnModel.create(native);
    const confident = CONFIDENT.map((i) => features[i]);
    for (const block of confident) {
      expect(maxAbsDiff(await onWasm.predict([block]), await onNative.predict([block]))).toBeLessThan(CONFIDENT_TOLERANCE);
    }
    const batchedWasm = await onWasm.predict(confident);
    const batchedNative = await onNative.predict(confident);
    expect(maxAbsDiff(batchedWasm, batchedNative)).toBeLessThan(CONFIDENT_TOLERANCE);
    const decide = (p: number) => p > SMART_TURN_COMPLETE_THRESHOLD;
    expect(batchedWasm.map(decide)).toEqual(batchedNative.map(decide));
  });

  it('WASM and native stay within a loose logit bound on an ambiguous clip', async () => {
    const [onWasm] = await SmartTurnModel.create(wasm).predict([features[AMBIGUOUS]]);
    const [onNative] = await SmartTurnModel.create(native).predict([features[AMBIGUOUS]]);
    expect(Math.abs(logit(onWasm) - logit(onNative))).toBeLessThan(AMBIGUOUS_LOGIT_TOLERANCE);
  });

  it('sanity: the finished question scores complete and the cut-off phrase incomplete, on both backends', async () => {
    for (const session of [native, wasm]) {
      const [finished, cutOff, finishedToo] = await SmartTurnModel.create(session).predict(CONFIDENT.map((i) => features[i]));
      expect(finished, session.backend).toBeGreaterThan(0.8);
      expect(cutOff, session.backend).toBeLessThan(0.2);
      expect(finishedToo, session.backend).toBeGreaterThan(0.8);
    }
  });

  it('the int8 model itself moves by more than 1e-3 when its input moves by 1e-6 (why 1e-3 is out of reach)', async () => {
    const model = SmartTurnModel.create(native);
    let seed = 7;
    const block = features[AMBIGUOUS];
    const nudged = block.map((x) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return x + (seed / 2 ** 32 - 0.5) * 2e-6;
    });
    expect(maxAbsDiff(await model.predict([block]), await model.predict([nudged]))).toBeGreaterThan(1e-3);
  });

  it('a batched run equals separate runs, on both backends', async () => {
    for (const session of [native, wasm]) {
      const model = SmartTurnModel.create(session);
      const separate: number[] = [];
      for (const block of features) separate.push(...(await model.predict([block])));
      const batched = await model.predict([features[3], features[0], features[1], features[2]]);
      expect(maxAbsDiff(batched, [separate[3], separate[0], separate[1], separate[2]]), session.backend).toBeLessThan(1e-4);
    }
  });

  it('queues concurrent predictions without mixing up their batches', async () => {
    const model = SmartTurnModel.create(native);
    const [ab, cd] = await Promise.all([model.predict([features[0], features[1]]), model.predict([features[2], features[3]])]);
    const all = await model.predict(features);
    expect(maxAbsDiff([...ab, ...cd], all)).toBeLessThan(1e-4);
  });

  it('rejects blocks of the wrong size and a session of another model', async () => {
    const model = SmartTurnModel.create(native);
    await expect(model.predict([new Float32Array(SMART_TURN_BLOCK_LENGTH - 1)])).rejects.toMatchObject({ code: 'VE_SMART_TURN_INPUT' });
    expect(await model.predict([])).toEqual([]);
    const vadLike: ModelSession = {
      backend: 'native',
      modelPath: 'silero.onnx',
      inputNames: ['input', 'state', 'sr'],
      outputNames: ['output', 'stateN'],
      run: async () => ({}),
      release: async () => {},
    };
    expect(() => SmartTurnModel.create(vadLike)).toThrow(expect.objectContaining({ code: 'VE_SMART_TURN_INPUT' }));
  });
});
