/**
 * What the density bench's processes share: the caller audio format, small statistics helpers, and the
 * shape of the JSON each measurement process reports.
 */
import { VoiceError } from '../../engine/errors.ts';
import { BACKEND_NAMES, type BackendName } from '../../engine/inference/backend.ts';
import type { FeederStats } from './caller-feed.ts';

/** LiveKit delivers caller audio as 20 ms frames at 48 kHz. */
export const INPUT_SAMPLE_RATE = 48_000;
export const FRAME_MS = 20;
export const FRAME_SAMPLES = (INPUT_SAMPLE_RATE * FRAME_MS) / 1000;

/** A bench option that cannot be used (unknown backend, a count that is not a number). */
export class BenchOptionError extends VoiceError {
  constructor(message: string) {
    super('VE_BENCH_OPTION', message, { status: 400 });
    this.name = 'BenchOptionError';
  }
}

export function parseBackend(value: string | undefined): BackendName {
  if (BACKEND_NAMES.includes(value as BackendName)) return value as BackendName;
  throw new BenchOptionError(`backend must be one of ${BACKEND_NAMES.join(', ')}, got ${String(value)}`);
}

/** "25,50,100" -> [25, 50, 100]; an empty string is an empty list. */
export function parseCountList(name: string, value: string | undefined): number[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 0) throw new BenchOptionError(`--${name} takes non-negative integers separated by commas, got "${value}"`);
    return n;
  });
}

/**
 * Both sides sample event-loop delay with monitorEventLoopDelay({ resolution: 10 }), whose histogram holds
 * the whole interval between timer callbacks: an idle loop reads about 10 ms. The delay is the excess.
 */
export const LOOP_MONITOR_RESOLUTION_MS = 10;

export function loopDelayOverTimerMs(histogramMs: number): number {
  return Math.max(0, histogramMs - LOOP_MONITOR_RESOLUTION_MS);
}

/**
 * A number for a log line; '-' for what JSON turned into null (NaN: no samples, e.g. no Smart Turn
 * answer at all in a run where every request timed out).
 */
export function fixed(value: number | null | undefined, digits: number): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '-';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function toMb(bytes: number): number {
  return bytes / (1024 * 1024);
}

export function summarise(values: readonly number[]): { mean: number; max: number } {
  if (values.length === 0) return { mean: Number.NaN, max: Number.NaN };
  let sum = 0;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v > max) max = v;
  }
  return { mean: sum / values.length, max };
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles, the same definition as the engine's LatencyRecorder. */
export function latencySummary(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (p: number) => (n === 0 ? Number.NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
  return { count: n, p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

/** What `run-engine.ts` prints. */
export interface EngineRunResult {
  arch: 'engine';
  backend: BackendName;
  calls: number;
  workers: number;
  turnWorkers: number;
  measuredMs: number;
  engineStartMs: number;
  frameLatencyMs: LatencySummary;
  /** As the engine measures it: Smart Turn request on the main thread to its answer (features are computed before, in the media worker). */
  stopToTurnDecisionMs: LatencySummary;
  droppedSamples: number;
  feeder: FeederStats;
  eventLoopDelayP99Ms: number;
  /** Of one core, for the whole process (all threads). */
  cpuPercentTotal: number;
  cpuPercentPerCall: number | null;
  /** CPU the rest of the machine used meanwhile (other engineers' work), in % of one core. */
  otherCpuPercent: number;
  /** 1-minute load average at the start and end of the measured phase. */
  loadAverage: { atStart: number; atEnd: number };
  /** Set by the parent: others used more CPU than allowed during every attempt at this run. */
  contended?: boolean;
  attempts?: number;
  rssMb: { mean: number; max: number };
  rssPerCallMb: number | null;
  vad: { batches: number; meanBatchSize: number };
  smartTurn: { requests: number; batches: number; failures: number; queuedAtEnd: number };
  /** `turnsByDeadline`: turns whose Smart Turn request missed SMART_TURN_DEADLINE_MS (the harness has no recogniser, so the silence rule decided them). */
  events: { speechStarts: number; speechEnds: number; turnsByModel: number; turnsBySilence: number; turnsByDeadline: number; smartTurnErrors: number; overflows: number };
  workerRestarts: number;
}

/** What one peer process (one call) reports to the parent at the end of the measured phase. */
export interface PeerReport {
  type: 'report';
  /** Frame-to-VAD-decision latencies of the measured phase, ms. */
  frameLatencyMs: number[];
  /** Smart Turn request to answer (same span as the engine's metric), ms. */
  stopToTurnDecisionMs: number[];
  /** Feature extraction before each request, ms (the engine does this in a media worker, outside its metric). */
  featureMs: number[];
  eventLoopDelayP99Ms: number;
  feeder: FeederStats;
  /** VAD windows still waiting when the phase ended: the peer's equivalent of a backlog. */
  pendingWindows: number;
  smartTurn: { requests: number; failures: number };
  events: { speechStarts: number; speechEnds: number; turnsByModel: number; turnsBySilence: number };
}

export type PeerMessage =
  | { type: 'ready'; loadMs: number }
  | { type: 'failed'; message: string }
  | PeerReport;

export type PeerCommand = { type: 'start' } | { type: 'measure' } | { type: 'stop' };
