/**
 * The worker's book of jobs and its admission rule, without any I/O, so the rule can be tested as
 * "these requests in, these answers out".
 *
 * A job passes through `accepted` (we answered "available"; LiveKit has not assigned it yet),
 * `starting` (assigned; the call is being hosted), `running` (hosted: the engine's own load figure
 * now includes it) and `ending` (termination in progress). Jobs `accepted` or `starting` are not in
 * the engine's load yet, so the ledger adds them itself. The decision and the reservation happen in
 * one synchronous step: nothing can run between "is there room?" and "take it", which is what
 * agents#4884 got wrong (two requests inside one load-refresh interval both saw the old load).
 */
import type { LoadFigure } from './load.ts';

export type JobPhase = 'accepted' | 'starting' | 'running' | 'ending';

export type RefusalReason = 'full' | 'draining' | 'duplicate';

export type Admission = { accepted: true; loadAfter: number } | { accepted: false; reason: RefusalReason; load: number };

export interface LedgerEntry<T> {
  readonly jobId: string;
  phase: JobPhase;
  /** Set when a termination arrived while the call was still being hosted. */
  terminateRequested: boolean;
  data: T;
}

/** What the worker tells LiveKit about itself. */
export interface WorkerReport {
  /** The load including jobs accepted but not yet hosted, 0..1. */
  load: number;
  /** True when the next request would be refused: the worker then reports `WS_FULL`. */
  full: boolean;
  jobCount: number;
}

/** Float sums such as 3 x (1/3) must not refuse the last slot. */
const EPSILON = 1e-9;
/** A load source that claims calls cost nothing would reopen the race; count each as at least this. */
const MIN_LOAD_PER_CALL = 1e-3;

function sanitise(figure: LoadFigure): LoadFigure {
  const load = Number.isFinite(figure.load) ? Math.min(1, Math.max(0, figure.load)) : 1;
  const loadPerCall = Number.isFinite(figure.loadPerCall) ? Math.min(1, Math.max(MIN_LOAD_PER_CALL, figure.loadPerCall)) : 1;
  return { load, loadPerCall };
}

export class JobLedger<T> {
  /** Load at or under which one more call is still admitted, in (0, 1]. */
  readonly loadThreshold: number;
  #jobs = new Map<string, LedgerEntry<T>>();
  #draining = false;

  constructor(options: { loadThreshold?: number } = {}) {
    this.loadThreshold = Math.min(1, Math.max(EPSILON, options.loadThreshold ?? 1));
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** Jobs answered "available" or being hosted, which the engine's load does not show yet. */
  get pendingCount(): number {
    let n = 0;
    for (const entry of this.#jobs.values()) if (entry.phase === 'accepted' || entry.phase === 'starting') n++;
    return n;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** From now on every request is refused and the worker reports full. */
  drain(): void {
    this.#draining = true;
  }

  get(jobId: string): LedgerEntry<T> | undefined {
    return this.#jobs.get(jobId);
  }

  entries(): LedgerEntry<T>[] {
    return [...this.#jobs.values()];
  }

  /** Decides and, when it accepts, reserves the slot in the same step. */
  admit(jobId: string, figure: LoadFigure, data: T): Admission {
    const { load, loadPerCall } = sanitise(figure);
    const pendingLoad = load + this.pendingCount * loadPerCall;
    if (this.#jobs.has(jobId)) return { accepted: false, reason: 'duplicate', load: pendingLoad };
    if (this.#draining) return { accepted: false, reason: 'draining', load: pendingLoad };
    if (pendingLoad + loadPerCall > this.loadThreshold + EPSILON) return { accepted: false, reason: 'full', load: pendingLoad };
    this.#jobs.set(jobId, { jobId, phase: 'accepted', terminateRequested: false, data });
    return { accepted: true, loadAfter: Math.min(1, pendingLoad + loadPerCall) };
  }

  /** Moves a job to `phase`; returns the entry, or `undefined` when the job is not in the book. */
  move(jobId: string, phase: JobPhase): LedgerEntry<T> | undefined {
    const entry = this.#jobs.get(jobId);
    if (entry !== undefined) entry.phase = phase;
    return entry;
  }

  /** Forgets a job (ended, failed, or never assigned); returns what was there. */
  release(jobId: string): LedgerEntry<T> | undefined {
    const entry = this.#jobs.get(jobId);
    this.#jobs.delete(jobId);
    return entry;
  }

  report(figure: LoadFigure): WorkerReport {
    const { load, loadPerCall } = sanitise(figure);
    const pendingLoad = load + this.pendingCount * loadPerCall;
    return {
      load: Math.min(1, pendingLoad),
      full: this.#draining || pendingLoad + loadPerCall > this.loadThreshold + EPSILON,
      jobCount: this.#jobs.size,
    };
  }
}
