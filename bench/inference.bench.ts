/**
 * Inference cost per run and per stream, both backends at one thread, after warm-up:
 * Silero VAD v6 through `SileroVad` (gather, one batched run, scatter) at B = 1, 8, 32, 128 streams,
 * and Smart Turn v3.2 through `SmartTurnModel` at B = 1 and 4.
 *
 * Run: npm exec -- node bench/inference.bench.ts   (writes bench/results/inference.json; about a minute)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { resolveModel } from '../models/model-manager.ts';
import { BACKEND_NAMES, createModelSession, warmUp, type BackendName, type ModelSession } from '../engine/inference/backend.ts';
import { SileroVad, VAD_CONTEXT_SAMPLES, VAD_WINDOW_SAMPLES } from '../engine/stages/silero-vad.ts';
import { SmartTurnModel } from '../engine/stages/smart-turn-model.ts';
import { loadFeatureExtractor, SMART_TURN_SAMPLE_RATE } from '../engine/stages/smart-turn-features.ts';

const THREADS = 1;
const VAD_BATCHES = [1, 8, 32, 128];
const TURN_BATCHES = [1, 4];

/** Voiced-speech-like signal; model cost does not depend on content, only on shape. */
function speechLike(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const t = i / SMART_TURN_SAMPLE_RATE;
    let voiced = 0;
    for (let h = 1; h <= 10; h++) voiced += Math.sin(2 * Math.PI * (120 + seed) * h * t) / h;
    out[i] = 0.2 * (0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t)) * voiced + 0.01 * (x / 2 ** 32 - 0.5);
  }
  return out;
}

interface CaseInfo {
  model: 'silero-vad-v6' | 'smart-turn-v3.2';
  backend: BackendName;
  batch: number;
}

const sileroPath = await resolveModel('silero-vad-v6');
const turnPath = await resolveModel('smart-turn-v3.2');
const extractor = await loadFeatureExtractor();
const sessions: ModelSession[] = [];
const cases = new Map<string, CaseInfo>();

const vadBench = new Bench({ name: 'Silero VAD v6 (SileroVad.run, 1 thread)', time: 1000, warmupTime: 200 });
const turnBench = new Bench({ name: 'Smart Turn v3.2 (SmartTurnModel.predict, 1 thread)', time: 1500, iterations: 4, warmupIterations: 2 });

const audio = speechLike(SMART_TURN_SAMPLE_RATE * 8, 7);
const windowsPerClip = Math.floor(audio.length / VAD_WINDOW_SAMPLES);

for (const backend of BACKEND_NAMES) {
  const vadSession = await createModelSession(backend, sileroPath, { threads: THREADS });
  sessions.push(vadSession);
  // onnxruntime-web needs ~2000 runs before it reaches its steady speed (FIELD-NOTES).
  await warmUp(
    vadSession,
    {
      input: { type: 'float32', data: audio.subarray(0, VAD_CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES), dims: [1, VAD_CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES] },
      state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
      sr: { type: 'int64', data: BigInt64Array.from([16000n]), dims: [] },
    },
    { maxDurationMs: 5000 },
  );
  for (const batch of VAD_BATCHES) {
    const vad = SileroVad.create(vadSession);
    const windows = new Map<string, Float32Array>();
    for (let s = 0; s < batch; s++) vad.addStream(`s${s}`);
    let step = 0;
    const name = `silero ${backend} B=${batch}`;
    cases.set(name, { model: 'silero-vad-v6', backend, batch });
    vadBench.add(name, async () => {
      // Streams sit at different places in the clip, as live calls would.
      for (let s = 0; s < batch; s++) {
        const w = (step + s * 7) % windowsPerClip;
        windows.set(`s${s}`, audio.subarray(w * VAD_WINDOW_SAMPLES, (w + 1) * VAD_WINDOW_SAMPLES));
      }
      await vad.run(windows);
      step++;
    });
  }

  const turnSession = await createModelSession(backend, turnPath, { threads: THREADS });
  sessions.push(turnSession);
  const model = SmartTurnModel.create(turnSession);
  const blocks = [0, 1, 2, 3].map((i) => extractor.extract(speechLike(SMART_TURN_SAMPLE_RATE * (2 + 2 * i), 11 + i)).slice());
  await model.predict(blocks);
  for (const batch of TURN_BATCHES) {
    const name = `smart-turn ${backend} B=${batch}`;
    cases.set(name, { model: 'smart-turn-v3.2', backend, batch });
    const feed = blocks.slice(0, batch);
    turnBench.add(name, async () => {
      await model.predict(feed);
    });
  }
}

const results = [];
for (const bench of [vadBench, turnBench]) {
  await bench.run();
  console.log(bench.name);
  const rows = [];
  for (const task of bench.tasks) {
    const info = cases.get(task.name) as CaseInfo;
    const result = task.result;
    if (result.state !== 'completed') {
      results.push({ name: task.name, ...info, state: result.state });
      continue;
    }
    const meanUs = result.latency.mean * 1000;
    const row = {
      name: task.name,
      ...info,
      threads: THREADS,
      latencyMeanUs: Math.round(meanUs),
      latencyP50Us: Math.round(result.latency.p50 * 1000),
      latencyP99Us: Math.round(result.latency.p99 * 1000),
      perStreamUs: Math.round(meanUs / info.batch),
      samplesCount: result.latency.samplesCount,
    };
    results.push(row);
    rows.push({
      case: task.name,
      'mean us': row.latencyMeanUs,
      'p50 us': row.latencyP50Us,
      'p99 us': row.latencyP99Us,
      'per stream us': row.perStreamUs,
      runs: row.samplesCount,
    });
  }
  console.table(rows);
}

for (const session of sessions) await session.release();

const outputDir = new URL('./results/', import.meta.url);
mkdirSync(outputDir, { recursive: true });
writeFileSync(
  new URL('inference.json', outputDir),
  `${JSON.stringify({ bench: 'inference', node: process.version, date: new Date().toISOString(), threads: THREADS, results }, null, 2)}\n`,
);
