/**
 * Measures what limits the engine and keeps its load figure ready: a timer samples the Smart Turn
 * threads' busy time, process CPU and the calls held every `sampleIntervalMs`; per-event measurements
 * (turn decisions, Smart Turn queue waits and runs, VAD lateness, event-loop delay) arrive through a
 * `LoadSampleSink` as they happen. Each sample turns the last `windowMs` into a `LoadEstimate`
 * (load-model.ts). Reading the load applies the calls held right now to the cached estimate without
 * any I/O or await, so admission and LiveKit's availability answers decide and reserve in one step
 * (agents#4884), and a call admitted a moment ago already counts at the measured cost per call.
 */
import { availableParallelism } from 'node:os';
import type { LoadFigure, LoadSource } from '../dispatch/load.ts';
import { estimateLoad, loadAt, nextFull, type LoadEstimate, type LoadPart, type LoadWindow } from './load-model.ts';
import { WindowedSamples } from './windowed-samples.ts';

/** Measurements as they happen; MediaEngine sends them, tests call them directly. */
export interface LoadSampleSink {
  /** VAD stop to Smart Turn's answer on the main thread (a timed-out request: its timeout). */
  turnDecision(latencyMs: number): void;
  /** Time a request waited in the queue before a Smart Turn thread took it. */
  smartTurnQueueWait(waitMs: number): void;
  /** Wall time of one Smart Turn run (one batch). */
  smartTurnRun(runMs: number): void;
  /** Caller frame written to its VAD window's result back on the main thread. */
  vadLateness(latencyMs: number): void;
}

/** What the engine's load is measured from. `MediaEngine.loadProbe()` is the real one. */
export interface LoadProbe {
  /** Calls whose media the engine holds now. */
  activeCalls(): number;
  readonly smartTurnThreads: number;
  /** Milliseconds the Smart Turn threads have spent running batches so far, summed over threads, runs in flight included. */
  smartTurnBusyMs(): number;
  /** Returns the unsubscribe function. */
  subscribe(sink: LoadSampleSink): () => void;
}

export interface ProcessCpu {
  /** CPU time of the process so far (user + system), in microseconds. */
  usageUs(): number;
  cores: number;
}

export interface EngineLoadOptions {
  /** The turn-decision p95 the engine must keep (`ENGINE_TURN_DECISION_TARGET_MS`). */
  turnDecisionTargetMs: number;
  /** Hard cap of calls (`ENGINE_MAX_CALLS`); also the floor of the per-call cost. */
  maxCalls: number;
  /** Default 1000. */
  sampleIntervalMs?: number;
  /** Default 5000: long enough for a p95 of the decisions of a few dozen calls, short enough to follow a ramp. */
  windowMs?: number;
  /** Full clears only when one more call would leave this much to spare. Default 0.1. */
  hysteresis?: number;
  /** Default: this process (`process.cpuUsage`, `availableParallelism`). */
  cpu?: ProcessCpu;
  /** Time the main thread's timers; default true. Tests feed `eventLoopDelay` instead. */
  sampleEventLoop?: boolean;
  /** Clock in ms; default performance.now. */
  now?: () => number;
}

/** The figure and what it is made of, as `GET /v1/engine` and `/metrics` show it. */
export interface EngineLoadReport {
  /** What LiveKit is told, 0..1: 1 while full. */
  load: number;
  /** What one more call adds. */
  loadPerCall: number;
  /** The engine refuses new calls: one more would push the decision p95 past its target, or the hard cap is reached. */
  full: boolean;
  calls: number;
  /** The part that limits the engine now. */
  limit: LoadPart | null;
  /** Each part in load units (1 = at its limit) with the calls held now; see load-model.ts. */
  parts: Record<LoadPart, number>;
  turnDecisionTargetMs: number;
  /** The window the estimate is from. NaN where nothing was measured. */
  measured: {
    windowMs: number;
    meanCalls: number;
    smartTurnUtilisation: number;
    /** The utilisation at which the decision p95 would reach its target. */
    smartTurnUtilisationCeiling: number;
    smartTurnQueueWaitP95Ms: number;
    turnDecisionP95Ms: number;
    turnDecisions: number;
    vadLatenessP95Ms: number;
    eventLoopDelayP99Ms: number;
    /** Process CPU in % of one core. */
    cpuPercent: number;
  };
}

interface Snapshot {
  at: number;
  busyMs: number;
  cpuUs: number;
  calls: number;
}

const EVENT_LOOP_RESOLUTION_MS = 10;

/** Issue 11's target for the turn-decision p95 (`ENGINE_TURN_DECISION_TARGET_MS`). */
export const DEFAULT_TURN_DECISION_TARGET_MS = 300;

function defaultCpu(): ProcessCpu {
  return {
    usageUs: () => {
      const usage = process.cpuUsage();
      return usage.user + usage.system;
    },
    cores: availableParallelism(),
  };
}

export class EngineLoad implements LoadSampleSink {
  readonly turnDecisionTargetMs: number;
  readonly maxCalls: number;
  readonly sampleIntervalMs: number;
  readonly windowMs: number;
  readonly hysteresis: number;
  /** The synchronous figure the agent worker reads (engine/dispatch/load.ts). */
  readonly source: LoadSource = () => this.figure();
  #probe: LoadProbe;
  #cpu: ProcessCpu;
  #now: () => number;
  #decisions: WindowedSamples;
  #queueWaits: WindowedSamples;
  #runs: WindowedSamples;
  #vadLateness: WindowedSamples;
  #eventLoop: WindowedSamples;
  #snapshots: Snapshot[] = [];
  #estimate: LoadEstimate;
  #full = false;
  #timer: NodeJS.Timeout | null = null;
  #eventLoopTimer: NodeJS.Timeout | null = null;
  #unsubscribe: () => void;
  #closed = false;

  constructor(probe: LoadProbe, options: EngineLoadOptions) {
    if (!(options.turnDecisionTargetMs > 0)) throw new RangeError('turnDecisionTargetMs must be positive');
    if (!(options.maxCalls >= 1)) throw new RangeError('maxCalls must be at least 1');
    this.turnDecisionTargetMs = options.turnDecisionTargetMs;
    this.maxCalls = options.maxCalls;
    this.sampleIntervalMs = options.sampleIntervalMs ?? 1000;
    this.windowMs = options.windowMs ?? 5000;
    this.hysteresis = options.hysteresis ?? 0.1;
    this.#probe = probe;
    this.#cpu = options.cpu ?? defaultCpu();
    this.#now = options.now ?? (() => performance.now());
    const buckets = Math.max(1, Math.round(this.windowMs / this.sampleIntervalMs));
    this.#decisions = new WindowedSamples({ buckets });
    this.#queueWaits = new WindowedSamples({ buckets });
    this.#runs = new WindowedSamples({ buckets });
    this.#vadLateness = new WindowedSamples({ buckets });
    this.#eventLoop = new WindowedSamples({ buckets });
    this.#snapshots.push(this.#snapshot());
    this.#estimate = estimateLoad(this.#window(), this.#settings());
    this.#unsubscribe = probe.subscribe(this);
    if (options.sampleEventLoop ?? true) this.#sampleEventLoop();
  }

  /** Starts the sampling timer. Without it, `tick()` samples (tests drive it with a fake clock). */
  start(): this {
    if (this.#closed || this.#timer !== null) return this;
    this.#timer = setInterval(() => this.tick(), this.sampleIntervalMs);
    this.#timer.unref();
    return this;
  }

  turnDecision(latencyMs: number): void {
    this.#decisions.record(latencyMs);
  }

  smartTurnQueueWait(waitMs: number): void {
    this.#queueWaits.record(waitMs);
  }

  smartTurnRun(runMs: number): void {
    this.#runs.record(runMs);
  }

  vadLateness(latencyMs: number): void {
    this.#vadLateness.record(latencyMs);
  }

  /** How late one of the main thread's timers ran. */
  eventLoopDelay(delayMs: number): void {
    this.#eventLoop.record(delayMs);
  }

  /** Closes the current sampling period: the window moves on and the estimate is redone. */
  tick(): void {
    if (this.#closed) return;
    this.#snapshots.push(this.#snapshot());
    const periods = this.#decisions.bucketCount;
    if (this.#snapshots.length > periods + 1) this.#snapshots.shift();
    this.#estimate = estimateLoad(this.#window(), this.#settings(), this.#estimate);
    for (const samples of [this.#decisions, this.#queueWaits, this.#runs, this.#vadLateness, this.#eventLoop]) samples.rotate();
    this.report();
  }

  /** The figure LiveKit and the admission read: synchronous, from the cached estimate and the calls held now. */
  figure(): LoadFigure {
    const { load, loadPerCall } = this.report();
    return { load, loadPerCall };
  }

  report(): EngineLoadReport {
    const calls = this.#probe.activeCalls();
    const at = loadAt(this.#estimate, calls, this.maxCalls);
    this.#full = nextFull(this.#full, at.measuredLoad, at.loadPerCall, calls, this.hysteresis);
    const atCap = calls >= this.maxCalls;
    const load = Math.max(this.#full ? 1 : Math.min(1, at.measuredLoad), Math.min(1, at.parts.maxCalls));
    const w = this.#estimate.window;
    return {
      load,
      loadPerCall: at.loadPerCall,
      full: this.#full || atCap,
      calls,
      limit: at.limit,
      parts: at.parts,
      turnDecisionTargetMs: this.turnDecisionTargetMs,
      measured: {
        windowMs: w.windowMs,
        meanCalls: w.meanCalls,
        smartTurnUtilisation: w.smartTurnUtilisation,
        smartTurnUtilisationCeiling: this.#estimate.utilisationCeiling,
        smartTurnQueueWaitP95Ms: w.smartTurnQueueWaitP95Ms,
        turnDecisionP95Ms: w.turnDecision.p95Ms,
        turnDecisions: w.turnDecision.count,
        vadLatenessP95Ms: w.vadLatenessP95Ms,
        eventLoopDelayP99Ms: w.eventLoopDelayP99Ms,
        cpuPercent: w.cpuShare * this.#cpu.cores * 100,
      },
    };
  }

  /** Flat gauges for `/metrics` and `GET /v1/engine`, from the same report. */
  metrics(): Record<string, number> {
    const r = this.report();
    return {
      load: r.load,
      load_per_call: r.loadPerCall,
      load_full: r.full ? 1 : 0,
      load_smart_turn: r.parts.smartTurn,
      load_cpu: r.parts.cpu,
      load_vad_lateness: r.parts.vadLateness,
      load_event_loop: r.parts.eventLoop,
      load_turn_decision_target_ms: r.turnDecisionTargetMs,
      load_window_turn_decision_p95_ms: r.measured.turnDecisionP95Ms,
      load_window_smart_turn_utilisation: r.measured.smartTurnUtilisation,
      load_window_smart_turn_utilisation_ceiling: r.measured.smartTurnUtilisationCeiling,
      load_window_smart_turn_queue_wait_p95_ms: r.measured.smartTurnQueueWaitP95Ms,
      load_window_vad_lateness_p95_ms: r.measured.vadLatenessP95Ms,
      load_window_event_loop_delay_p99_ms: r.measured.eventLoopDelayP99Ms,
      load_window_cpu_percent: r.measured.cpuPercent,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#eventLoopTimer !== null) clearInterval(this.#eventLoopTimer);
    this.#timer = null;
    this.#eventLoopTimer = null;
    this.#unsubscribe();
  }

  #settings() {
    return { turnDecisionTargetMs: this.turnDecisionTargetMs, maxCalls: this.maxCalls };
  }

  #snapshot(): Snapshot {
    return { at: this.#now(), busyMs: this.#probe.smartTurnBusyMs(), cpuUs: this.#cpu.usageUs(), calls: this.#probe.activeCalls() };
  }

  #window(): LoadWindow {
    const first = this.#snapshots[0];
    const last = this.#snapshots[this.#snapshots.length - 1];
    const spanMs = last.at - first.at;
    // Every snapshot but the first closes one period of the window; with only one, the calls now.
    const callSamples = this.#snapshots.length > 1 ? this.#snapshots.slice(1) : this.#snapshots;
    const meanCalls = callSamples.reduce((sum, s) => sum + s.calls, 0) / callSamples.length;
    const threads = Math.max(1, this.#probe.smartTurnThreads);
    return {
      windowMs: spanMs,
      meanCalls,
      smartTurnUtilisation: spanMs > 0 ? Math.min(1, Math.max(0, (last.busyMs - first.busyMs) / (spanMs * threads))) : 0,
      turnDecision: { count: this.#decisions.count, p95Ms: this.#decisions.percentile(95) },
      smartTurnQueueWaitP95Ms: this.#queueWaits.percentile(95),
      smartTurnRun: { count: this.#runs.count, p50Ms: this.#runs.percentile(50) },
      vadLatenessP95Ms: this.#vadLateness.percentile(95),
      eventLoopDelayP99Ms: this.#eventLoop.percentile(99),
      cpuShare: spanMs > 0 ? Math.max(0, (last.cpuUs - first.cpuUs) / 1000 / (spanMs * this.#cpu.cores)) : 0,
    };
  }

  /**
   * A 10 ms timer whose lateness is the event-loop delay (perf_hooks' histogram cannot be windowed:
   * it only resets, and its histograms cannot be merged into a sliding window).
   */
  #sampleEventLoop(): void {
    let last = this.#now();
    this.#eventLoopTimer = setInterval(() => {
      const now = this.#now();
      this.eventLoopDelay(Math.max(0, now - last - EVENT_LOOP_RESOLUTION_MS));
      last = now;
    }, EVENT_LOOP_RESOLUTION_MS);
    this.#eventLoopTimer.unref();
  }
}
