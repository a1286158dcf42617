/**
 * The engine's Smart Turn features and model against Pipecat's own: the same clips (espeak-ng speech,
 * single utterances and conversations with a previous utterance inside the 8 s) through Pipecat's
 * `LocalSmartTurnAnalyzerV3` in Python (its truncation, `compute_whisper_log_mel_features` and
 * onnxruntime session, from the pinned `pipecat-ai` wheel) and through the engine's extractor and
 * model sessions. Features must agree within 1e-6 (the count of bit-identical elements is reported),
 * native probabilities within 1e-3 and decisions on every clip; the WASM backend's agreement is
 * reported, not asserted (onnxruntime-web's int8 kernels differ from the native ones).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModel } from '../../models/model-manager.ts';
import { createModelSession, type BackendName } from '../../engine/inference/backend.ts';
import { loadFeatureExtractor, SMART_TURN_FEATURE_LENGTH } from '../../engine/stages/smart-turn-features.ts';
import { SmartTurnModel, SMART_TURN_COMPLETE_THRESHOLD } from '../../engine/stages/smart-turn-model.ts';
import { synthesizeConversation, type ScriptStep } from '../support/speech.ts';
import { cacheDir } from '../support/process.ts';
import { runPipecatReference, type FeaturesAnswer } from './reference.ts';

const SAMPLE_RATE = 16_000;

/** Pipecat's window for a first turn: 500 ms + the VAD start window before the speech, the VAD stop after. */
const single = (text: string): ScriptStep[] => [{ pauseMs: 700 }, { say: text }, { pauseMs: 200 }];

const CLIPS: Record<string, ScriptStep[]> = {
  question: single('Can you tell me what time the pharmacy closes tonight?'),
  cutOff: single('I would like to book a table for'),
  yes: single('Yes.'),
  digits: single('My account number is four five six'),
  thanks: single('Thanks, that is everything I needed.'),
  trailing: single('So what I was thinking is that maybe we could'),
  // A previous utterance inside the 8 s, as the engine's old history window scored it.
  helloThenAddress: [{ pauseMs: 700 }, { say: 'Hello.' }, { pauseMs: 1000 }, { say: 'I need to change my delivery address' }, { pauseMs: 200 }],
  hearMeThenProblem: [{ pauseMs: 300 }, { say: 'Can you hear me?' }, { pauseMs: 1500 }, { say: 'Okay good, so the problem is' }, { pauseMs: 200 }],
  invoiceThenRefund: [{ say: 'The first thing is the invoice.' }, { pauseMs: 600 }, { say: 'The second thing is the refund for the broken chair.' }, { pauseMs: 200 }],
  // Longer than 8 s: both keep only the last 8 s.
  long: [
    { say: 'I have been a customer for about six years now, and I have never had a problem like this one before.' },
    { pauseMs: 400 },
    { say: 'The package arrived damaged, the box was open, and half of the items were missing.' },
    { pauseMs: 200 },
  ],
};

const workDir = mkdtempSync(join(tmpdir(), 'pipecat-features-'));

interface ClipRun {
  name: string;
  pcm: Int16Array;
  path: string;
}

let clips: ClipRun[];
let reference: FeaturesAnswer;
let smartTurnPath: string;

beforeAll(async () => {
  smartTurnPath = await resolveModel('smart-turn-v3.2');
  clips = Object.entries(CLIPS).map(([name, script]) => {
    const { pcm } = synthesizeConversation(script, { sampleRate: SAMPLE_RATE });
    const path = join(workDir, `${name}.pcm`);
    writeFileSync(path, pcm);
    return { name, pcm, path };
  });
  reference = await runPipecatReference({ command: 'features', clips: clips.map(({ name, path }) => ({ name, path })) });
}, 120_000);

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

function pipecatFeatures(clip: ClipRun): Float32Array {
  const bytes = readFileSync(`${clip.path}.features.f32`);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

async function probabilities(backend: BackendName, features: Float32Array[]): Promise<number[]> {
  const session = await createModelSession(backend, smartTurnPath, { threads: 1 });
  try {
    const model = SmartTurnModel.create(session);
    const out: number[] = [];
    // One clip per run, as Pipecat scores them (a batch of one).
    for (const block of features) out.push(...(await model.predict([block])));
    return out;
  } finally {
    await session.release();
  }
}

describe("Smart Turn features and model against Pipecat's reference", () => {
  let engineFeatures: Float32Array[];

  it('computes the same features as Pipecat: within 1e-6, nearly every element bit-identical', async () => {
    const extractor = await loadFeatureExtractor();
    engineFeatures = clips.map((clip) => extractor.extract(Float32Array.from(clip.pcm, (s) => s / 32768)));
    let identical = 0;
    let total = 0;
    let maxDiff = 0;
    for (const [i, clip] of clips.entries()) {
      const expected = pipecatFeatures(clip);
      expect(expected.length).toBe(SMART_TURN_FEATURE_LENGTH);
      for (let j = 0; j < expected.length; j++) {
        const diff = Math.abs(engineFeatures[i][j] - expected[j]);
        if (diff === 0) identical++;
        maxDiff = Math.max(maxDiff, diff);
      }
      total += expected.length;
    }
    console.log(`features: ${identical} of ${total} elements bit-identical to Pipecat's, max |diff| ${maxDiff.toExponential(2)} (${clips.length} clips)`);
    record('features', { clips: clips.length, elements: total, bitIdentical: identical, maxAbsDiff: maxDiff, versions: reference.versions });
    expect(maxDiff).toBeLessThan(1e-6);
    // The float32 part is exact and the float64 part differs in the last bits only: a mismatch rate
    // above one in ten thousand means the precision path broke, not rounding luck.
    expect(identical / total).toBeGreaterThan(0.9999);
  });

  it('gives Pipecat’s probabilities natively (within 1e-3) and the same decision on every clip', async () => {
    const native = await probabilities('native', engineFeatures);
    const rows = clips.map((clip, i) => {
      const expected = reference.clips.find((c) => c.name === clip.name)!;
      return { clip: clip.name, pipecat: expected.probability, native: native[i], diff: Math.abs(native[i] - expected.probability), pipecatComplete: expected.complete };
    });
    console.table(rows);
    const maxDiff = Math.max(...rows.map((r) => r.diff));
    record('native', { maxAbsDiff: maxDiff, rows });
    for (const row of rows) {
      expect(row.diff, row.clip).toBeLessThan(1e-3);
      expect(row.native > SMART_TURN_COMPLETE_THRESHOLD, row.clip).toBe(row.pipecatComplete);
    }
    // The clips must exercise both outcomes, or "same decision" says little.
    expect(rows.some((r) => r.pipecatComplete)).toBe(true);
    expect(rows.some((r) => !r.pipecatComplete)).toBe(true);
  });

  it('reports how close the WASM backend comes', async () => {
    const wasm = await probabilities('wasm', engineFeatures);
    const rows = clips.map((clip, i) => {
      const expected = reference.clips.find((c) => c.name === clip.name)!;
      return { clip: clip.name, pipecat: expected.probability, wasm: wasm[i], diff: Math.abs(wasm[i] - expected.probability), sameDecision: wasm[i] > SMART_TURN_COMPLETE_THRESHOLD === expected.complete };
    });
    const agree = rows.filter((r) => r.sameDecision).length;
    const maxDiff = Math.max(...rows.map((r) => r.diff));
    console.log(`wasm: same decision as Pipecat on ${agree} of ${rows.length} clips, max |probability diff| ${maxDiff.toFixed(4)}`);
    record('wasm', { sameDecision: agree, clips: rows.length, maxAbsDiff: maxDiff, rows });
    for (const row of rows) expect(row.wasm).toBeGreaterThanOrEqual(0);
  });
});

/** Machine-readable results for the README and the issue (`.cache/pipecat-reference/features.json`). */
const results: Record<string, unknown> = {};
function record(key: string, value: unknown): void {
  results[key] = value;
  const dir = cacheDir('pipecat-reference');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'features.json'), `${JSON.stringify(results, null, 2)}\n`);
}
