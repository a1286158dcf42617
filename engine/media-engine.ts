/**
 * The media core as one object: media workers (resampling + batched VAD + Smart Turn features), the
 * Smart Turn pool, and per-call turn detectors on the main thread. The main thread only moves frames
 * into rings and events out; every model runs in a worker.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MediaPool, type MediaPoolStats, type WorkerRestartPolicy } from './pool/media-pool.ts';
import { SmartTurnPool, SmartTurnTimeoutError, type SmartTurnPoolStats } from './pool/smart-turn-pool.ts';
import { CallAudio } from './call-audio.ts';
import { LatencyRecorder } from './metrics/latency-recorder.ts';
import { ClosedError, VoiceError } from './errors.ts';
import type { FromWorker } from './pool/protocol.ts';
import { loadResamplerModule } from './stages/resampler.ts';
import type { BackendName } from './inference/backend.ts';
import type { VadHysteresisOptions } from './stages/vad-hysteresis.ts';
import type { TurnDetectorSettings } from './turn/turn-detector.ts';
import { TURN_RULES, type TurnRule } from './events.ts';
import type { TurnWindowSettings } from './pool/protocol.ts';
import type { LoadProbe, LoadSampleSink } from './load/engine-load.ts';
import { MISSED_DEADLINE_MS } from './load/load-model.ts';

export interface MediaEngineOptions {
  models: { vadPath: string; smartTurnPath: string };
  /** Media worker threads (VAD, resampling, features). */
  workers: number;
  /** Smart Turn threads. */
  turnWorkers: number;
  vadBackend: BackendName;
  smartTurnBackend: BackendName;
  /** Intra-op threads per inference session. */
  inferenceThreads: number;
  vad: VadHysteresisOptions;
  turn: Partial<TurnDetectorSettings>;
  /**
   * `deadlineMs`: how long after the worker's VAD stop decision a Smart Turn answer is of use; a request
   * that cannot answer by then is dropped (or its late answer ignored) and the turn detector's fallback
   * decides (engine/turn/turn-detector.ts).
   */
  smartTurn: { maxBatch: number; deadlineMs: number };
  warmUp: { vadRuns: number; smartTurnRuns: number };
  /** Caller audio each call's ring can hold before it counts drops. */
  inputRingMs: number;
  historyMs: number;
  /** Which audio Smart Turn scores: the current turn's, as Pipecat builds it. */
  turnWindow: TurnWindowSettings;
  /** See MediaWorkerSettings.batchWindowMs. */
  vadBatchWindowMs: number;
  /** See MediaWorkerSettings.skipDigitalSilence. */
  vadSkipDigitalSilence: boolean;
  /** See MediaWorkerSettings.modelResetIntervalMs. */
  vadModelResetIntervalMs: number;
  /** See MediaWorkerSettings.minVolume. */
  vadMinVolume: number;
  allowFaultInjection: boolean;
  /** Restart backoff and cap of the media workers (see WorkerRestartPolicy). */
  workerRestart: Partial<WorkerRestartPolicy>;
  onListenerError?: (callId: string, error: unknown) => void;
}

/**
 * What an engine started without the configuration runs. The product builds its options from the
 * configuration (server/engine-options.ts); server/engine-options.test.ts keeps these equal to the
 * configuration's defaults, which are the truth.
 */
export const DEFAULT_MEDIA_OPTIONS: Omit<MediaEngineOptions, 'models'> = {
  workers: 2,
  turnWorkers: 1,
  // Measured: Silero v6 costs ~100 µs a window batched native against ~240 µs in onnxruntime-web
  // (bench/inference); in the 30-caller simulation each media worker used 8 % of a core instead of 16 %.
  vadBackend: 'native',
  // Measured: Smart Turn v3.2 costs ~83 ms native against ~343 ms in onnxruntime-web (bench/inference).
  smartTurnBackend: 'native',
  inferenceThreads: 1,
  vad: { confidence: 0.7, exitConfidence: 0.35, startMs: 200, stopMs: 200 },
  turn: {},
  // The stop already comes 200 ms of silence after the speech; 250 ms more leaves the event loop's
  // timer lateness room under the 300 ms stop-to-decision p95 target (SMART_TURN_DEADLINE_MS).
  smartTurn: { maxBatch: 8, deadlineMs: 250 },
  warmUp: { vadRuns: 200, smartTurnRuns: 3 },
  inputRingMs: 2000,
  historyMs: 8000,
  // Pipecat's SmartTurnParams: pre_speech_ms 500, max_duration_secs 8.
  turnWindow: { preSpeechMs: 500, maxDurationMs: 8000 },
  vadBatchWindowMs: 20,
  vadSkipDigitalSilence: true,
  // Pipecat 1.14's SileroVADAnalyzer: _MODEL_RESET_INTERVAL_SECS = 2.0.
  vadModelResetIntervalMs: 2000,
  // Pipecat's VADParams.min_volume.
  vadMinVolume: 0.6,
  allowFaultInjection: false,
  workerRestart: {},
};

const EVENT_LOOP_RESOLUTION_MS = 10;

export interface MediaEngineMetrics {
  calls: number;
  frameLatencyMs: { count: number; p50: number; p95: number; p99: number; max: number };
  stopToTurnDecisionMs: { count: number; p50: number; p95: number; p99: number; max: number };
  droppedSamples: number;
  workerRestarts: number;
  /** Media workers that died more often than the restart policy allows and stay down. */
  workersDown: number;
  smartTurn: Omit<SmartTurnPoolStats, 'busyMs'>;
  /** Completed user turns by the rule that decided them (see TurnRule). */
  turnDecisions: Record<TurnRule, number>;
  vadBatches: number;
  vadMeanBatchSize: number;
  /** Windows of digital silence answered without the model (see MediaWorkerSettings.skipDigitalSilence). */
  vadSilentWindows: number;
  eventLoopDelayP99Ms: number;
}

export class MediaEngine {
  readonly options: MediaEngineOptions;
  #pool: MediaPool;
  #turnPool: SmartTurnPool;
  #calls = new Map<string, CallAudio>();
  #frameLatency = new LatencyRecorder();
  #decisionLatency = new LatencyRecorder();
  #eventLoop: ReturnType<typeof monitorEventLoopDelay>;
  #droppedOfClosedCalls = 0;
  #vadBatches = 0;
  #vadWindows = 0;
  #vadSilentWindows = 0;
  #turnDecisions = Object.fromEntries(TURN_RULES.map((rule) => [rule, 0])) as Record<TurnRule, number>;
  /** Who measures the engine's load from what happens here (engine/load/engine-load.ts). */
  #loadSinks = new Set<LoadSampleSink>();
  #closed = false;

  private constructor(options: MediaEngineOptions) {
    this.options = options;
    this.#pool = new MediaPool(
      {
        workers: options.workers,
        settings: {
          vadModelPath: options.models.vadPath,
          vadBackend: options.vadBackend,
          threads: options.inferenceThreads,
          vad: options.vad,
          warmUpRuns: options.warmUp.vadRuns,
          historyMs: options.historyMs,
          turnWindow: options.turnWindow,
          batchWindowMs: options.vadBatchWindowMs,
          skipDigitalSilence: options.vadSkipDigitalSilence,
          modelResetIntervalMs: options.vadModelResetIntervalMs,
          minVolume: options.vadMinVolume,
          allowFaultInjection: options.allowFaultInjection,
        },
        restart: options.workerRestart,
      },
      {
        onMessage: (workerId, message) => this.#onWorkerMessage(workerId, message),
        onWorkerRestarted: (callIds, from, to, error) => {
          for (const callId of callIds) this.#calls.get(callId)?.handleWorkerRestarted(from, to, error.message);
        },
        onCallFailed: (callId, failure) => this.#calls.get(callId)?.handleMediaFailed(failure.code, failure.message, failure.reason),
        // Reported through metrics (workersDown); each call it held was re-homed or failed on its own.
        onWorkerDown: () => {},
      },
    );
    this.#turnPool = new SmartTurnPool({
      modelPath: options.models.smartTurnPath,
      backend: options.smartTurnBackend,
      threads: options.turnWorkers,
      intraOpThreads: options.inferenceThreads,
      maxBatch: options.smartTurn.maxBatch,
      deadlineMs: options.smartTurn.deadlineMs,
      warmUpRuns: options.warmUp.smartTurnRuns,
      onRun: (run) =>
        this.#toLoadSinks((sink) => {
          for (const waitMs of run.waitsMs) sink.smartTurnQueueWait(waitMs);
          sink.smartTurnRun(run.runMs);
        }),
    });
    this.#eventLoop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  }

  /** Starts and warms every worker; resolves when the engine can take calls. */
  static async start(options: Partial<Omit<MediaEngineOptions, 'models'>> & Pick<MediaEngineOptions, 'models'>): Promise<MediaEngine> {
    const engine = new MediaEngine({ ...DEFAULT_MEDIA_OPTIONS, ...options });
    try {
      // The main thread resamples only the bot's synthesised audio on its way out (about 14 us a frame).
      await Promise.all([engine.#pool.start(), engine.#turnPool.warmUp(), loadResamplerModule()]);
    } catch (error) {
      await engine.close();
      throw new VoiceError('VE_ENGINE_START_FAILED', `media engine failed to start: ${(error as Error).message}`, { cause: error });
    }
    engine.#eventLoop.enable();
    return engine;
  }

  get activeCalls(): number {
    return this.#calls.size;
  }

  openCall(callId: string, opts: { inputSampleRate: number; trace?: boolean }): CallAudio {
    if (this.#closed) throw new ClosedError('media engine');
    if (this.#calls.has(callId)) throw new VoiceError('VE_CALL_EXISTS', `call ${callId} is already open`, { status: 409 });
    const call = new CallAudio({
      callId,
      inputSampleRate: opts.inputSampleRate,
      ringCapacitySamples: Math.ceil((opts.inputSampleRate * this.options.inputRingMs) / 1000),
      turn: this.options.turn,
      trace: opts.trace ?? false,
      hooks: {
        notify: (id) => this.#pool.notify(id),
        requestSmartTurn: (c, requestId, features, featureMs) => this.#requestSmartTurn(c, requestId, features, featureMs),
        recordTurnDecision: (rule) => this.#turnDecisions[rule]++,
        recordFrameLatency: (ms) => {
          this.#frameLatency.record(ms);
          this.#toLoadSinks((sink) => sink.vadLateness(ms));
        },
        onListenerError: (id, error) => this.options.onListenerError?.(id, error),
        close: async (c) => {
          this.#calls.delete(c.callId);
          this.#droppedOfClosedCalls += c.droppedSamples();
          await this.#pool.removeCall(c.callId);
        },
      },
    });
    this.#calls.set(callId, call);
    try {
      this.#pool.addCall({ callId, inputRing: call.inputRing.buffer, inputSampleRate: opts.inputSampleRate, turnBoundary: call.turnBoundary.buffer });
    } catch (error) {
      this.#calls.delete(callId);
      throw error;
    }
    return call;
  }

  getCall(callId: string): CallAudio | undefined {
    return this.#calls.get(callId);
  }

  workerOf(callId: string): number | undefined {
    return this.#pool.workerOf(callId);
  }

  /** Each media worker (live, down for good, calls, restarts) and the calls waiting for one. */
  poolStats(): MediaPoolStats {
    return this.#pool.stats();
  }

  /** Test hook: kills a media worker thread (needs `allowFaultInjection`). */
  crashWorker(workerId: number): void {
    this.#pool.crashWorker(workerId);
  }

  /** Test hook: the next `count` starts of a media worker fail (needs `allowFaultInjection`). */
  failWorkerStarts(workerId: number, count: number): void {
    this.#pool.failWorkerStarts(workerId, count);
  }

  /** Test hook: a media worker blocks its thread this long (needs `allowFaultInjection`). */
  stallWorker(workerId: number, durationMs: number): void {
    this.#pool.stallWorker(workerId, durationMs);
  }

  /** Test hook: a worker processing this call's audio dies, on any worker (needs `allowFaultInjection`). */
  crashOnCallAudio(callId: string): void {
    this.#pool.crashOnCallAudio(callId);
  }

  /** Test hook: every later Smart Turn run holds its thread `extraMs` longer (needs `allowFaultInjection`). */
  slowSmartTurn(extraMs: number): void {
    if (this.options.allowFaultInjection) this.#turnPool.slowDown(extraMs);
  }

  /** What the engine's load is measured from: calls held, Smart Turn busy time, and measurements as they happen. */
  loadProbe(): LoadProbe {
    return {
      activeCalls: () => this.#calls.size,
      smartTurnThreads: this.options.turnWorkers,
      smartTurnBusyMs: () => this.#turnPool.busyMs(),
      subscribe: (sink) => {
        this.#loadSinks.add(sink);
        return () => this.#loadSinks.delete(sink);
      },
    };
  }

  #toLoadSinks(record: (sink: LoadSampleSink) => void): void {
    for (const sink of this.#loadSinks) {
      try {
        record(sink);
      } catch {
        // Measuring must never reach the audio path.
      }
    }
  }

  #onWorkerMessage(_workerId: number, message: FromWorker): void {
    if (message.type !== 'step') return;
    const now = performance.now();
    if (message.batchSize > 0) this.#vadBatches++;
    this.#vadWindows += message.batchSize;
    this.#vadSilentWindows += message.silentWindows;
    for (const window of message.windows) {
      this.#calls.get(window.callId)?.handleWindow(window.endSamples, window.probability, window.inputSamples, now);
    }
    for (const event of message.events) {
      const call = this.#calls.get(event.callId);
      if (!call) continue;
      // A caller who resumes speaking makes any queued Smart Turn question about the pause moot.
      if (event.type === 'speech_start') this.#turnPool.cancel(event.callId);
      call.handleVadEvent(event);
    }
  }

  #requestSmartTurn(call: CallAudio, requestId: number, features: Float32Array, featureMs: number): void {
    // From the worker's stop decision: feature extraction there, then queueing and the model here. The
    // deadline counts from there too, so the time the features took is already spent.
    const started = performance.now() - featureMs;
    this.#turnPool.predict(call.callId, features, this.options.smartTurn.deadlineMs - featureMs).then(
      (answer) => {
        const decisionMs = performance.now() - started;
        this.#decisionLatency.record(decisionMs);
        this.#toLoadSinks((sink) => sink.turnDecision(decisionMs));
        if (!call.closed) call.handleSmartTurn(requestId, answer.probability);
      },
      (error: VoiceError) => {
        // A missed deadline is a decision on time by the fallback, not an error: it counts with the
        // moment the fallback took over (a superseded request was never needed).
        if (error instanceof SmartTurnTimeoutError) {
          const decisionMs = performance.now() - started;
          this.#decisionLatency.record(decisionMs);
          // For the load, the model's answer was later than any target: the fallback caps the latency
          // callers feel, not what Smart Turn can keep up with.
          this.#toLoadSinks((sink) => sink.turnDecision(MISSED_DEADLINE_MS));
          if (!call.closed) call.handleSmartTurnDeadline(requestId);
          return;
        }
        if (!call.closed) call.handleSmartTurnFailure(requestId, error.code ?? 'VE_SMART_TURN_FAILED', error.message);
      },
    );
  }

  metrics(): MediaEngineMetrics {
    let dropped = this.#droppedOfClosedCalls;
    for (const call of this.#calls.values()) dropped += call.droppedSamples();
    const workers = this.#pool.stats().workers;
    return {
      calls: this.#calls.size,
      frameLatencyMs: this.#frameLatency.summary(),
      stopToTurnDecisionMs: this.#decisionLatency.summary(),
      droppedSamples: dropped,
      workerRestarts: workers.reduce((sum, w) => sum + w.restarts, 0),
      workersDown: workers.filter((w) => w.down).length,
      smartTurn: (({ busyMs: _busyMs, ...stats }) => stats)(this.#turnPool.stats()),
      turnDecisions: { ...this.#turnDecisions },
      vadBatches: this.#vadBatches,
      vadMeanBatchSize: this.#vadBatches === 0 ? 0 : this.#vadWindows / this.#vadBatches,
      vadSilentWindows: this.#vadSilentWindows,
      // The histogram's timer fires every 10 ms; only what exceeds that is delay.
      eventLoopDelayP99Ms: Math.max(0, this.#eventLoop.percentile(99) / 1e6 - EVENT_LOOP_RESOLUTION_MS),
    };
  }

  /** Clears the latency windows, e.g. after a benchmark's warm-up phase. */
  resetMetrics(): void {
    this.#frameLatency.reset();
    this.#decisionLatency.reset();
    this.#eventLoop.reset();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#eventLoop.disable();
    await Promise.all([...this.#calls.values()].map((call) => call.close()));
    await Promise.all([this.#pool.close(), this.#turnPool.close()]);
  }
}
