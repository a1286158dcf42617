import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModel } from '../../models/model-manager.ts';
import { createModelSession, type ModelSession } from '../inference/backend.ts';
import { padWithSilence, quietNoise, synthesizeSpeech16k } from '../inference/test-speech.ts';
import { SileroVad, VAD_CONTEXT_SAMPLES, VAD_SAMPLE_RATE, VAD_WINDOW_SAMPLES } from './silero-vad.ts';

let wasm: ModelSession;
let native: ModelSession;

beforeAll(async () => {
  const modelPath = await resolveModel('silero-vad-v6');
  wasm = await createModelSession('wasm', modelPath, { threads: 1 });
  native = await createModelSession('native', modelPath, { threads: 1 });
});
afterAll(async () => {
  await wasm?.release();
  await native?.release();
});

/**
 * Independent single-stream reference: the model run at B=1 on onnxruntime-node, with the context and
 * state handled here rather than by SileroVad.
 */
async function referenceProbabilities(audio: Float32Array, windowCount: number): Promise<number[]> {
  const context = new Float32Array(VAD_CONTEXT_SAMPLES);
  let state = new Float32Array(2 * 128);
  const probabilities: number[] = [];
  for (let w = 0; w < windowCount; w++) {
    const input = new Float32Array(VAD_CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES);
    input.set(context, 0);
    input.set(audio.subarray(w * VAD_WINDOW_SAMPLES, (w + 1) * VAD_WINDOW_SAMPLES), VAD_CONTEXT_SAMPLES);
    const out = await native.run({
      input: { type: 'float32', data: input, dims: [1, input.length] },
      state: { type: 'float32', data: state, dims: [2, 1, 128] },
      sr: { type: 'int64', data: BigInt64Array.from([16000n]), dims: [] },
    });
    probabilities.push((out.output.data as Float32Array)[0]);
    state = Float32Array.from(out.stateN.data as Float32Array);
    context.set(input.subarray(input.length - VAD_CONTEXT_SAMPLES));
  }
  return probabilities;
}

function windowOf(audio: Float32Array, index: number): Float32Array {
  return audio.slice(index * VAD_WINDOW_SAMPLES, (index + 1) * VAD_WINDOW_SAMPLES);
}

function windowCount(audio: Float32Array): number {
  return Math.floor(audio.length / VAD_WINDOW_SAMPLES);
}

const ms = (durationMs: number): number => Math.round((durationMs * VAD_SAMPLE_RATE) / 1000);

/** One stream's life in the scenario: which audio, when it joins, how it feeds windows. */
interface Participant {
  label: string;
  streamId: string;
  audio: Float32Array;
  joinStep: number;
  /** Windows it feeds before leaving (defaults to all of its audio). */
  windowLimit?: number;
  /** Feeds a window only on steps where this returns true (a stream whose audio arrives irregularly). */
  feedsOn?: (step: number) => boolean;
  /** Leading silence, for the sanity check. */
  silenceBeforeSamples: number;
  speechSamples: number;
}

describe('SileroVad (WASM, batched) against single-stream onnxruntime-node', () => {
  it('gives every stream the probabilities of its own single-stream run while streams join, pause and leave', async () => {
    const sentences = [
      'The quick brown fox jumps over the lazy dog.',
      'Could you please book me a table for two at eight tonight?',
      'My account number is four five six, seven eight nine.',
      'Thanks, that is all I needed for today.',
      'Hello, is anybody there?',
    ].map((text) => synthesizeSpeech16k(text));

    const participants: Participant[] = [
      { label: 'a', streamId: 'a', audio: padWithSilence(sentences[0], ms(500), ms(500), 11), joinStep: 0, silenceBeforeSamples: ms(500), speechSamples: sentences[0].length },
      {
        label: 'b (every other step)',
        streamId: 'b',
        audio: padWithSilence(sentences[1], ms(800), ms(300), 12),
        joinStep: 3,
        feedsOn: (step) => step % 2 === 0,
        silenceBeforeSamples: ms(800),
        speechSamples: sentences[1].length,
      },
      { label: 'c (leaves early)', streamId: 'c', audio: padWithSilence(sentences[2], ms(200), ms(200), 13), joinStep: 10, windowLimit: 40, silenceBeforeSamples: ms(200), speechSamples: sentences[2].length },
      { label: 'noise only', streamId: 'd', audio: quietNoise(ms(2500), 14), joinStep: 0, silenceBeforeSamples: ms(2500), speechSamples: 0 },
      // The id 'c' comes back after leaving: the new stream must start from a fresh state.
      { label: 'c again', streamId: 'c', audio: padWithSilence(sentences[3], ms(300), ms(300), 15), joinStep: 60, silenceBeforeSamples: ms(300), speechSamples: sentences[3].length },
      { label: 'e', streamId: 'e', audio: padWithSilence(sentences[4], ms(600), ms(400), 16), joinStep: 25, silenceBeforeSamples: ms(600), speechSamples: sentences[4].length },
    ];

    const vad = SileroVad.create(wasm);
    const got = participants.map(() => [] as number[]);
    const fed = participants.map(() => 0);
    const limitOf = (p: Participant) => Math.min(p.windowLimit ?? Infinity, windowCount(p.audio));
    const batchSizes: number[] = [];

    for (let step = 0; participants.some((p, i) => fed[i] < limitOf(p)); step++) {
      const windows = new Map<string, Float32Array>();
      const owners = new Map<string, number>();
      participants.forEach((p, i) => {
        if (step < p.joinStep || fed[i] >= limitOf(p)) return;
        if (!vad.hasStream(p.streamId)) vad.addStream(p.streamId);
        if (p.feedsOn !== undefined && !p.feedsOn(step)) return;
        windows.set(p.streamId, windowOf(p.audio, fed[i]));
        owners.set(p.streamId, i);
      });
      const result = windows.size > 0 ? await vad.run(windows) : new Map<string, number>();
      batchSizes.push(result.size);
      for (const [id, probability] of result) {
        const i = owners.get(id) as number;
        got[i].push(probability);
        fed[i]++;
        if (fed[i] === limitOf(participants[i])) vad.removeStream(id);
      }
      expect(step).toBeLessThan(1000);
    }

    // The scenario really batched several streams at once and really varied the batch size.
    expect(Math.max(...batchSizes)).toBeGreaterThanOrEqual(4);
    expect(new Set(batchSizes).size).toBeGreaterThanOrEqual(3);
    expect(vad.streamCount).toBe(0);

    for (let i = 0; i < participants.length; i++) {
      const p = participants[i];
      const expected = await referenceProbabilities(p.audio, limitOf(p));
      expect(got[i].length, p.label).toBe(expected.length);
      let worst = 0;
      for (let w = 0; w < expected.length; w++) worst = Math.max(worst, Math.abs(got[i][w] - expected[w]));
      expect(worst, `max |batched - single| for ${p.label}`).toBeLessThan(1e-4);
    }

    // Sanity: windows wholly inside the leading silence score low, speech scores high.
    for (let i = 0; i < participants.length; i++) {
      const p = participants[i];
      const silentWindows = Math.min(Math.floor(p.silenceBeforeSamples / VAD_WINDOW_SAMPLES), got[i].length);
      for (let w = 0; w < silentWindows; w++) expect(got[i][w], `${p.label} window ${w} (silence)`).toBeLessThan(0.2);
      if (p.speechSamples === 0) continue;
      const firstSpeech = Math.ceil(p.silenceBeforeSamples / VAD_WINDOW_SAMPLES);
      const lastSpeech = Math.min(Math.floor((p.silenceBeforeSamples + p.speechSamples) / VAD_WINDOW_SAMPLES), got[i].length);
      const speech = got[i].slice(firstSpeech, lastSpeech);
      const speechy = speech.filter((x) => x > 0.5).length / speech.length;
      expect(speechy, `${p.label}: share of speech windows above 0.5`).toBeGreaterThan(0.6);
      expect(Math.max(...speech)).toBeGreaterThan(0.9);
    }
  });

  it('moves a stream to another instance with export/import without changing its probabilities', async () => {
    const audio = padWithSilence(synthesizeSpeech16k('Please transfer me to billing.'), ms(300), ms(300), 21);
    const other = padWithSilence(synthesizeSpeech16k('Never mind.'), ms(100), ms(100), 22);
    const count = windowCount(audio);
    const moveAt = Math.floor(count / 2);
    const first = SileroVad.create(wasm);
    const second = SileroVad.create(wasm);
    first.addStream('call');
    first.addStream('neighbour');
    second.addStream('resident');
    const got: number[] = [];
    for (let w = 0; w < count; w++) {
      if (w === moveAt) {
        const exported = first.exportStreamState('call');
        first.removeStream('call');
        second.importStreamState('call', exported);
      }
      const host = w < moveAt ? first : second;
      const peer = w < moveAt ? 'neighbour' : 'resident';
      const windows = new Map([
        ['call', windowOf(audio, w)],
        [peer, windowOf(other, w % windowCount(other))],
      ]);
      got.push((await host.run(windows)).get('call') as number);
    }
    const expected = await referenceProbabilities(audio, count);
    for (let w = 0; w < count; w++) expect(Math.abs(got[w] - expected[w])).toBeLessThan(1e-4);
  });

  it('resetStream gives a fresh state, even when the reset lands while a step is in flight', async () => {
    const audio = padWithSilence(synthesizeSpeech16k('One two three four five.'), ms(100), ms(100), 31);
    const vad = SileroVad.create(wasm);
    vad.addStream('x');
    for (let w = 0; w < 10; w++) await vad.run(new Map([['x', windowOf(audio, w)]]));
    const inFlight = vad.run(new Map([['x', windowOf(audio, 10)]]));
    vad.resetStream('x');
    // The reset was made after the call, so it wins: the queued window is dropped, not applied on top.
    expect((await inFlight).has('x')).toBe(false);
    vad.addStream('fresh');
    const next = windowOf(audio, 11);
    const result = await vad.run(new Map([['x', next], ['fresh', next]]));
    expect(Math.abs((result.get('x') as number) - (result.get('fresh') as number))).toBeLessThan(1e-6);
    expect(vad.exportStreamState('x')).toEqual(vad.exportStreamState('fresh'));
  });

  it('rejects unknown streams, wrong window sizes, bad imported state and a model that is not Silero', async () => {
    const vad = SileroVad.create(wasm);
    vad.addStream('s');
    expect(() => vad.addStream('s')).toThrow(expect.objectContaining({ code: 'VE_VAD_INPUT' }));
    await expect(vad.run(new Map([['nope', new Float32Array(VAD_WINDOW_SAMPLES)]]))).rejects.toMatchObject({ code: 'VE_VAD_INPUT' });
    await expect(vad.run(new Map([['s', new Float32Array(480)]]))).rejects.toMatchObject({ code: 'VE_VAD_INPUT' });
    expect(() => vad.importStreamState('s', { context: new Float32Array(10), state: new Float32Array(256) })).toThrow(
      expect.objectContaining({ code: 'VE_VAD_INPUT' }),
    );
    expect(await vad.run(new Map())).toEqual(new Map());
    const notSilero: ModelSession = {
      backend: 'wasm',
      modelPath: 'other.onnx',
      inputNames: ['input_features'],
      outputNames: ['logits'],
      run: async () => ({}),
      release: async () => {},
    };
    expect(() => SileroVad.create(notSilero)).toThrow(expect.objectContaining({ code: 'VE_VAD_INPUT' }));
  });
});
