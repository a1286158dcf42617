/**
 * Runs Smart Turn v3 in its own Piscina pool, apart from the media workers, so a 40-150 ms model run
 * never delays any call's VAD. Requests that arrive while every turn thread is busy are batched into
 * the next run (the model's batch dimension is dynamic): dynamic batching across calls.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { VoiceError, ClosedError } from '../errors.ts';
import type { BackendName } from '../inference/backend.ts';
import type { SmartTurnTask, SmartTurnTaskResult } from './smart-turn-worker.ts';

export interface SmartTurnPoolOptions {
  modelPath: string;
  backend: BackendName;
  /** Turn threads (each holds one session). */
  threads: number;
  /** Intra-op threads per session. */
  intraOpThreads: number;
  maxBatch: number;
  /**
   * Deadline of a request that `predict` gives none: past it the request is rejected
   * (`SmartTurnTimeoutError`) and the turn detector's fallback decides.
   */
  deadlineMs: number;
  warmUpRuns: number;
  /** Told of every run when it ends: how long its requests waited for a thread, and how long it ran. */
  onRun?: (run: SmartTurnRunRecord) => void;
}

export interface SmartTurnRunRecord {
  /** Per request of the batch: enqueued to taken by a thread. */
  waitsMs: number[];
  /** Wall time from handing the batch to a thread to its answer. */
  runMs: number;
}

export interface SmartTurnAnswer {
  probability: number;
  /** Queueing plus inference, as seen from the main thread. */
  latencyMs: number;
  batchSize: number;
}

interface Pending {
  /** One pending request per key (a call): a newer request replaces a queued older one. */
  key: string;
  features: Float32Array;
  enqueuedAt: number;
  resolve(answer: SmartTurnAnswer): void;
  reject(error: Error): void;
  /** `performance.now()` past which the answer is of no use. */
  deadlineAt: number;
  timer: NodeJS.Timeout;
  settled: boolean;
  /** Handed to a thread: its cost is spent, whatever happens to the answer. */
  running: boolean;
}

/** The request missed its deadline: it waited too long for a thread, could not finish in time, or ran past it. */
export class SmartTurnTimeoutError extends VoiceError {
  /** Whether the request was dropped before any thread ran it (it cost nothing). */
  readonly ran: boolean;
  constructor(deadlineMs: number, ran: boolean) {
    super('VE_SMART_TURN_TIMEOUT', `Smart Turn could not answer within its ${Math.round(deadlineMs)} ms deadline (${ran ? 'ran past it' : 'dropped before it ran'})`, { retryable: true });
    this.ran = ran;
  }
}

export class SmartTurnSupersededError extends VoiceError {
  constructor() {
    super('VE_SMART_TURN_SUPERSEDED', 'a newer Smart Turn request of the same call replaced this one', { retryable: false });
  }
}

export class SmartTurnFailedError extends VoiceError {
  constructor(cause: unknown) {
    super('VE_SMART_TURN_FAILED', `Smart Turn inference failed: ${(cause as Error)?.message ?? cause}`, { retryable: true, cause });
  }
}

/** How long `close()` waits for runs in flight before it destroys the threads. */
const CLOSE_WAIT_MS = 5000;

/** How long a measured run time stays the estimate that requests are dropped by. */
const ESTIMATE_FRESH_MS = 1000;

export interface SmartTurnPoolStats {
  requests: number;
  batches: number;
  failures: number;
  /** Requests that missed their deadline: `expired + late`. */
  timeouts: number;
  /** Dropped before any thread ran them: queued past their deadline, or a typical run would have ended past it. */
  expired: number;
  /** Ran, but past their deadline. */
  late: number;
  superseded: number;
  queued: number;
  inFlight: number;
  busyMs: number;
}

export class SmartTurnPool {
  readonly options: SmartTurnPoolOptions;
  #piscina: Piscina;
  #queue: Pending[] = [];
  #inFlight = 0;
  #closed = false;
  #batches = 0;
  #requests = 0;
  #failures = 0;
  /** Requests dropped unrun because their deadline passed or could not be met. */
  #expired = 0;
  /** Requests whose run went past their deadline (their answers were of no use). */
  #late = 0;
  #superseded = 0;
  /** Recent wall time of a run (exponential average); 0 until one has run. */
  #typicalRunMs = 0;
  #lastRunEndedAt = -Infinity;
  #running = new Set<Promise<unknown>>();
  /** Wall time of finished runs, summed over threads; runs in flight are in #runStartedAt. */
  #busyMs = 0;
  #runStartedAt = new Map<Promise<unknown>, number>();
  /** Test hook: each run holds its thread this much longer (see `slowDown`). */
  #extraRunMs = 0;

  constructor(options: SmartTurnPoolOptions) {
    this.options = options;
    this.#piscina = new Piscina({
      filename: fileURLToPath(new URL('./smart-turn-worker.ts', import.meta.url)),
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      atomics: 'disabled',
    });
  }

  /** Loads the model in every turn thread and runs it until onnxruntime is warm. */
  async warmUp(): Promise<void> {
    const tasks = Array.from({ length: this.options.threads }, () => this.#run({ ...this.#taskBase(), features: [], warmUpRuns: this.options.warmUpRuns }, []));
    await Promise.all(tasks);
  }

  /**
   * Asks about one call's audio. A queued request of the same `key` that has not started is dropped
   * (its answer could only be stale), which also keeps a saturated pool from piling up work.
   */
  predict(key: string, features: Float32Array, deadlineMs: number = this.options.deadlineMs): Promise<SmartTurnAnswer> {
    if (this.#closed) return Promise.reject(new ClosedError('Smart Turn pool'));
    this.#requests++;
    this.cancel(key);
    const enqueuedAt = performance.now();
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        key,
        features,
        enqueuedAt,
        deadlineAt: enqueuedAt + deadlineMs,
        resolve,
        reject,
        settled: false,
        running: false,
        timer: setTimeout(() => this.#missDeadline(pending), Math.max(0, deadlineMs)),
      };
      this.#queue.push(pending);
      this.#dispatch();
    });
  }

  /** Drops the queued (not yet running) request of `key`, e.g. because the caller resumed speaking. */
  cancel(key: string): void {
    const index = this.#queue.findIndex((p) => p.key === key && !p.settled);
    if (index < 0) return;
    const [pending] = this.#queue.splice(index, 1);
    this.#superseded++;
    this.#settle(pending, new SmartTurnSupersededError());
  }

  /** Milliseconds the turn threads have spent running batches so far, summed over threads, runs in flight included. */
  busyMs(): number {
    const now = performance.now();
    let busy = this.#busyMs;
    for (const startedAt of this.#runStartedAt.values()) busy += now - startedAt;
    return busy;
  }

  /** Test hook: every later run holds its thread `extraMs` longer, as on a box whose cores are taken. */
  slowDown(extraMs: number): void {
    this.#extraRunMs = Math.max(0, extraMs);
  }

  stats(): SmartTurnPoolStats {
    return {
      busyMs: this.busyMs(),
      requests: this.#requests,
      batches: this.#batches,
      failures: this.#failures,
      timeouts: this.#expired + this.#late,
      expired: this.#expired,
      late: this.#late,
      superseded: this.#superseded,
      queued: this.#queue.length,
      inFlight: this.#inFlight,
    };
  }

  #taskBase(): Omit<SmartTurnTask, 'features'> {
    return { modelPath: this.options.modelPath, backend: this.options.backend, threads: this.options.intraOpThreads };
  }

  #run(task: SmartTurnTask, transferList: ArrayBuffer[]): Promise<SmartTurnTaskResult> {
    return this.#piscina.run(task, { transferList });
  }

  #missDeadline(pending: Pending): void {
    if (pending.settled) return;
    if (pending.running) this.#late++;
    else this.#expired++;
    this.#settle(pending, new SmartTurnTimeoutError(pending.deadlineAt - pending.enqueuedAt, pending.running));
  }

  #dispatch(): void {
    while (!this.#closed && this.#inFlight < this.options.threads) {
      // A request that a typical run would finish past its deadline is dropped now, before it costs a
      // thread: its fallback decides sooner, and the requests behind it get the thread.
      // An estimate older than ESTIMATE_FRESH_MS is not trusted (nothing ran since: the box may have
      // recovered), so a request is tried and measures it again.
      const now = performance.now();
      const finishAt = now + (now - this.#lastRunEndedAt < ESTIMATE_FRESH_MS ? this.#typicalRunMs : 0);
      for (const p of this.#queue) if (!p.settled && finishAt > p.deadlineAt) this.#missDeadline(p);
      this.#queue = this.#queue.filter((p) => !p.settled);
      const batch = this.#queue.splice(0, this.options.maxBatch);
      if (batch.length === 0) return;
      for (const p of batch) p.running = true;
      this.#inFlight++;
      this.#batches++;
      const features = batch.map((p) => p.features);
      const startedAt = performance.now();
      const waitsMs = batch.map((p) => startedAt - p.enqueuedAt);
      const delayMs = this.#extraRunMs > 0 ? this.#extraRunMs : undefined;
      const run = this.#run({ ...this.#taskBase(), features, delayMs }, features.map((f) => f.buffer as ArrayBuffer));
      this.#running.add(run);
      this.#runStartedAt.set(run, startedAt);
      run
        .then((result) => {
          const now = performance.now();
          batch.forEach((p, i) => this.#settle(p, { probability: result.probabilities[i], latencyMs: now - p.enqueuedAt, batchSize: batch.length }));
        })
        .catch((error: unknown) => {
          this.#failures++;
          const failure = new SmartTurnFailedError(error);
          for (const p of batch) this.#settle(p, failure);
        })
        .finally(() => {
          const runMs = performance.now() - startedAt;
          this.#busyMs += runMs;
          this.#typicalRunMs = this.#typicalRunMs === 0 ? runMs : 0.8 * this.#typicalRunMs + 0.2 * runMs;
          this.#lastRunEndedAt = performance.now();
          this.#runStartedAt.delete(run);
          this.#running.delete(run);
          this.#inFlight--;
          try {
            this.options.onRun?.({ waitsMs, runMs });
          } catch {
            // A measurement listener must never stop the pool from dispatching.
          }
          this.#dispatch();
        });
    }
  }

  #settle(pending: Pending, outcome: SmartTurnAnswer | Error): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#queue.splice(0)) this.#settle(pending, new ClosedError('Smart Turn pool'));
    // Destroying the pool under a running onnxruntime-node call aborts the whole process: let the
    // runs in flight finish first (each is bounded by the model's cost, far under this wait).
    await Promise.race([Promise.allSettled([...this.#running]), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    await this.#piscina.destroy();
  }
}
