/**
 * One density measurement of the media engine, in a fresh process so that its RSS is its own:
 * N simulated callers fed in real time (20 ms frames at 48 kHz from one timer), a warm-up phase, then
 * `engine.resetMetrics()` and the measured phase. Prints ONE JSON line on stdout (logs go to stderr).
 * With `--calls 0` it measures the idle engine (workers up and warm, the audio pool loaded), the base
 * that the marginal memory per call is computed from.
 *
 * Run: npm exec -- node bench/density/run-engine.ts --calls 50 --backend wasm --seconds 30
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { MediaEngine, type MediaEngineMetrics } from '../../engine/media-engine.ts';
import type { BackendName } from '../../engine/inference/backend.ts';
import { loadConfig } from '../../server/config.ts';
import { engineOptions, resolveEngineModels } from '../../server/engine-options.ts';
import { buildConversationPool, seededRandom } from './conversations.ts';
import { LoopingAudio, RealTimeFeeder } from './caller-feed.ts';
import { clockTicksPerSecond, machineBusyCpuSeconds } from './proc-stats.ts';
import { INPUT_SAMPLE_RATE, FRAME_MS, FRAME_SAMPLES, parseBackend, sleep, summarise, toMb, type EngineRunResult } from './common.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '25' },
    backend: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    'warmup-seconds': { type: 'string', default: '5' },
    workers: { type: 'string' },
    'turn-workers': { type: 'string' },
    'tick-ms': { type: 'string', default: '5' },
    'vad-warmup-runs': { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});

// The engine as `npm start` builds it from the configuration (environment and defaults); a flag given
// on the command line overrides that one field, because the density run compares backends and sizes.
const config = loadConfig({ CI: '1', ...process.env });
const product = engineOptions(config, await resolveEngineModels(config));
const calls = Number(values.calls);
const backend: BackendName = values.backend !== undefined ? parseBackend(values.backend) : product.media.vadBackend;
const measuredSeconds = Number(values.seconds);
const warmupSeconds = Number(values['warmup-seconds']);
const workers = values.workers !== undefined ? Number(values.workers) : product.media.workers;
const turnWorkers = values['turn-workers'] !== undefined ? Number(values['turn-workers']) : product.media.turnWorkers;
const tickMs = Number(values['tick-ms']);
// onnxruntime-web needs ~2000 runs to reach its steady speed (FIELD-NOTES); a production deployment
// would warm that far before taking calls, so the bench does too.
const vadWarmUpRuns = Number(values['vad-warmup-runs'] ?? (backend === 'wasm' ? 2000 : 200));

const log = (msg: string) => process.stderr.write(`[engine ${backend} N=${calls}] ${msg}\n`);

// Loaded even for the idle baseline, so that the audio pool is not counted as memory per call.
const pool = buildConversationPool(INPUT_SAMPLE_RATE);

const startedAt = performance.now();
const engine = await MediaEngine.start({
  ...product.media,
  workers,
  turnWorkers,
  ...(values.backend !== undefined ? { vadBackend: backend, smartTurnBackend: backend } : {}),
  warmUp: { vadRuns: vadWarmUpRuns, smartTurnRuns: 3 },
});
const engineStartMs = performance.now() - startedAt;
log(`engine started in ${engineStartMs.toFixed(0)} ms`);

const random = seededRandom(Number(values.seed) * 1_000_003 + calls);
const feeder = new RealTimeFeeder({ frameMs: FRAME_MS, tickMs });
const counts = { speechStarts: 0, speechEnds: 0, turnsByModel: 0, turnsBySilence: 0, turnsByDeadline: 0, smartTurnErrors: 0, overflows: 0 };
let counting = false;

for (let i = 0; i < calls; i++) {
  const conversation = pool[i % pool.length];
  const audio = new LoopingAudio(conversation.pcm, FRAME_SAMPLES, Math.floor(random() * conversation.pcm.length));
  const call = engine.openCall(`call-${i}`, { inputSampleRate: INPUT_SAMPLE_RATE });
  call.onEvent((event) => {
    if (!counting) return;
    if (event.type === 'speech_start') counts.speechStarts++;
    else if (event.type === 'speech_end') counts.speechEnds++;
    else if (event.type === 'user_turn_complete') {
      if (event.rule === 'model') counts.turnsByModel++;
      else if (event.rule === 'silence') counts.turnsBySilence++;
      else counts.turnsByDeadline++;
    } else if (event.type === 'smart_turn_error') counts.smartTurnErrors++;
    else if (event.type === 'input_overflow') counts.overflows++;
  });
  feeder.add(random() * FRAME_MS, () => call.writeCallerAudio(audio.next()));
}

feeder.start();
await sleep(calls === 0 ? 1000 : warmupSeconds * 1000);

// Measured phase.
engine.resetMetrics();
feeder.resetStats();
counting = true;
const before = engine.metrics();
const rssSamples: number[] = [];
const sampleRss = () => rssSamples.push(process.memoryUsage.rss());
sampleRss();
const rssTimer = setInterval(sampleRss, 500);
const ticksPerSecond = clockTicksPerSecond();
const loadAverageAtStart = loadavg()[0];
const machineBefore = machineBusyCpuSeconds(ticksPerSecond);
const cpuBefore = process.cpuUsage();
const wallBefore = performance.now();
await sleep((calls === 0 ? Math.min(measuredSeconds, 3) : measuredSeconds) * 1000);
const cpu = process.cpuUsage(cpuBefore);
const wallMs = performance.now() - wallBefore;
const machineBusyPercent = ((machineBusyCpuSeconds(ticksPerSecond) - machineBefore) * 1000 * 100) / wallMs;
sampleRss();
clearInterval(rssTimer);
const after = engine.metrics();
feeder.stop();

const cpuPercentTotal = ((cpu.user + cpu.system) / 1000 / wallMs) * 100;
const rss = summarise(rssSamples);
const result: EngineRunResult = {
  arch: 'engine',
  backend,
  calls,
  workers,
  turnWorkers,
  measuredMs: Math.round(wallMs),
  engineStartMs: Math.round(engineStartMs),
  frameLatencyMs: after.frameLatencyMs,
  stopToTurnDecisionMs: after.stopToTurnDecisionMs,
  droppedSamples: after.droppedSamples - before.droppedSamples,
  feeder: feeder.stats(),
  eventLoopDelayP99Ms: after.eventLoopDelayP99Ms,
  cpuPercentTotal,
  cpuPercentPerCall: calls > 0 ? cpuPercentTotal / calls : null,
  otherCpuPercent: Math.max(0, machineBusyPercent - cpuPercentTotal),
  loadAverage: { atStart: loadAverageAtStart, atEnd: loadavg()[0] },
  rssMb: { mean: toMb(rss.mean), max: toMb(rss.max) },
  rssPerCallMb: calls > 0 ? toMb(rss.mean) / calls : null,
  vad: vadDelta(before, after),
  smartTurn: {
    requests: after.smartTurn.requests - before.smartTurn.requests,
    batches: after.smartTurn.batches - before.smartTurn.batches,
    failures: after.smartTurn.failures - before.smartTurn.failures,
    queuedAtEnd: after.smartTurn.queued,
  },
  events: counts,
  workerRestarts: after.workerRestarts,
};
process.stdout.write(`${JSON.stringify(result)}\n`);

await Promise.race([engine.close(), sleep(10_000)]);
process.exit(0);

/** VAD batches and mean batch size over the measured phase only (the engine's counters are cumulative). */
function vadDelta(a: MediaEngineMetrics, b: MediaEngineMetrics): { batches: number; meanBatchSize: number } {
  const batches = b.vadBatches - a.vadBatches;
  const windows = b.vadMeanBatchSize * b.vadBatches - a.vadMeanBatchSize * a.vadBatches;
  return { batches, meanBatchSize: batches > 0 ? windows / batches : 0 };
}
