/**
 * The engine's load as a pure function of one window of measurements: "these measurements in, this
 * load out". `1` means that one more call would push the turn-decision p95 (the VAD's stop to Smart
 * Turn's answer on the main thread) past its target T (`ENGINE_TURN_DECISION_TARGET_MS`).
 *
 * Smart Turn is what limits this engine (one run costs 45-80 ms on this 2-core box and every pause
 * of every call asks for one), so its part is derived from measurements, not from a call budget:
 *
 * - The Smart Turn thread takes every queued request into its next run, and a run costs more the more
 *   it carries. A request that arrives while the thread is busy waits for the run in progress, then
 *   for its own run, which carries what arrived meanwhile. With the thread busy a fraction ρ of the
 *   time, a run lasts c0 / (1 - ρ) (it carries ρ of its own length in work), so the decision latency
 *   grows like a queue's: L(ρ) = L0 / (1 - ρ).
 * - One window measures one point of that curve: the decision p95 L_m at the measured utilisation
 *   ρ_m. So L0 = L_m (1 - ρ_m), and L reaches T at the utilisation ceiling ρ* = 1 - L_m (1 - ρ_m) / T.
 *   With too few decisions in the window for a p95, the foot of the curve is used instead: L0 = the
 *   median run (a request that finds the thread idle waits only for its own run), ρ_m = 0.
 * - Utilisation is linear in calls (each call asks once per pause): ρ(n) = n ρ_m / n̄, with n̄ the
 *   mean calls over the window. The Smart Turn part with n calls is ρ(n) / ρ*: it is 1 exactly where
 *   L would reach T, and a window whose p95 is already over T gives ρ* < ρ_m, a part over 1.
 *
 * Process CPU is the second linear part: its share of all cores over CPU_CEILING (past it every
 * thread of the process waits for a core, the Smart Turn thread included). VAD lateness and
 * event-loop delay are guards, not linear in calls (small until something saturates, then large):
 * each is 1 at half of T, because a VAD that runs half of T late notices the caller's silence that
 * much later, and a main thread that lags half of T holds every frame in and out that long, both on
 * top of the decision. Guards count only while the engine holds calls: an idle engine's lateness says
 * nothing about what a call costs, and an engine that refused its first call could never measure one.
 *
 * `loadPerCall` is the measured marginal cost of a call (the largest linear part per call), never
 * less than 1 / ENGINE_MAX_CALLS, which also stays a hard cap. Full is latched with hysteresis: it
 * is set when load + loadPerCall > 1 and cleared only when load + loadPerCall <= 1 - hysteresis.
 */

/** One window of measurements (see EngineLoad for how each is taken). */
export interface LoadWindow {
  windowMs: number;
  /** Calls held, averaged over the window's samples. */
  meanCalls: number;
  /** Share of the window the Smart Turn threads spent running batches, 0..1 (mean over threads). */
  smartTurnUtilisation: number;
  /** VAD stop to Smart Turn's answer on the main thread; a request that missed its deadline counts as MISSED_DEADLINE_MS. */
  turnDecision: { count: number; p95Ms: number };
  /** Time requests waited for a Smart Turn thread; NaN when none ran. */
  smartTurnQueueWaitP95Ms: number;
  /** Wall time of Smart Turn runs (a run carries a batch); NaN when none ran. */
  smartTurnRun: { count: number; p50Ms: number };
  /** Caller frame written to its VAD result back on the main thread; NaN without calls. */
  vadLatenessP95Ms: number;
  /** How late the main thread's timers ran; NaN when not sampled. */
  eventLoopDelayP99Ms: number;
  /** Process CPU as a share of all cores, 0..1. */
  cpuShare: number;
}

export interface LoadModelSettings {
  /** The turn-decision p95 the engine must keep (T). */
  turnDecisionTargetMs: number;
  /** Hard cap of calls; also the floor of the per-call cost (1 / maxCalls). */
  maxCalls: number;
}

/** What one window says about the engine, before the call count is applied. */
export interface LoadEstimate {
  /** ρ*: the Smart Turn utilisation at which the decision p95 reaches its target. */
  utilisationCeiling: number;
  /** Load per call of the parts that grow with calls (0 until measured with calls). */
  perCall: { smartTurn: number; cpu: number };
  /** Guards, in load units (1 = at their budget). */
  guards: { vadLateness: number; eventLoop: number };
  /** The window it was estimated from. */
  window: LoadWindow;
}

export type LoadPart = 'smartTurn' | 'cpu' | 'vadLateness' | 'eventLoop' | 'maxCalls';

export interface LoadAt {
  /** The largest measured part (all but `maxCalls`), not clamped: over 1 means over the target. */
  measuredLoad: number;
  /** Every part in load units with `calls` calls. */
  parts: Record<LoadPart, number>;
  loadPerCall: number;
  /** The largest part, or null when every part is 0. */
  limit: LoadPart | null;
}

/**
 * The decision latency recorded for a request Smart Turn did not answer by its deadline (the fallback
 * decided): later than any target, so more than 5 % of them put the p95 past it and the engine reads
 * as full, although the latency callers feel stays capped by the deadline.
 */
export const MISSED_DEADLINE_MS = 1e9;

/** Fewer decisions in a window than this give no p95 worth extrapolating from. */
export const MIN_DECISIONS_FOR_P95 = 10;
/** Never plan to keep the Smart Turn thread busier than this: the queue has no slack left. */
export const MAX_UTILISATION_CEILING = 0.95;
/** A ceiling under this means "not even one call fits"; kept finite so the load stays defined. */
export const MIN_UTILISATION_CEILING = 0.05;
/** Process CPU share of all cores at which the process counts as full. */
export const CPU_CEILING = 0.9;
/** Guards reach 1 at this share of the decision target. */
export const GUARD_SHARE_OF_TARGET = 0.5;
/** A run of Smart Turn v3.2 on this box before anything was measured (bench/inference: 45-83 ms). */
export const DEFAULT_RUN_MS = 80;

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function finiteOr(value: number, fallback: number): number {
  return Number.isFinite(value) ? value : fallback;
}

/** The utilisation ceiling ρ* from one point (latency, utilisation) of L(ρ) = L0 / (1 - ρ). */
export function utilisationCeiling(latencyMs: number, utilisation: number, targetMs: number): number {
  // At ρ = 1 the measured p95 says nothing about L0 (the queue grows for as long as it lasts); 0.99
  // still puts ρ* under 1, so a saturated thread reads as full.
  const rho = clamp(utilisation, 0, 0.99);
  return clamp(1 - (latencyMs * (1 - rho)) / targetMs, MIN_UTILISATION_CEILING, MAX_UTILISATION_CEILING);
}

/** What a window says; `previous` supplies what this window cannot (no calls, no runs). */
export function estimateLoad(window: LoadWindow, settings: LoadModelSettings, previous?: LoadEstimate): LoadEstimate {
  const target = settings.turnDecisionTargetMs;
  let ceiling: number;
  if (window.turnDecision.count >= MIN_DECISIONS_FOR_P95 && Number.isFinite(window.turnDecision.p95Ms)) {
    ceiling = utilisationCeiling(window.turnDecision.p95Ms, window.smartTurnUtilisation, target);
  } else if (window.smartTurnRun.count > 0 && Number.isFinite(window.smartTurnRun.p50Ms)) {
    ceiling = utilisationCeiling(window.smartTurnRun.p50Ms, 0, target);
  } else {
    ceiling = previous?.utilisationCeiling ?? utilisationCeiling(DEFAULT_RUN_MS, 0, target);
  }
  // Per-call costs need calls to divide by; with fewer than one on average, keep what was measured.
  const perCall =
    window.meanCalls >= 1
      ? { smartTurn: window.smartTurnUtilisation / window.meanCalls / ceiling, cpu: window.cpuShare / window.meanCalls / CPU_CEILING }
      : (previous?.perCall ?? { smartTurn: 0, cpu: 0 });
  const budgetMs = GUARD_SHARE_OF_TARGET * target;
  const guards = {
    vadLateness: Math.max(0, finiteOr(window.vadLatenessP95Ms, 0)) / budgetMs,
    eventLoop: Math.max(0, finiteOr(window.eventLoopDelayP99Ms, 0)) / budgetMs,
  };
  return { utilisationCeiling: ceiling, perCall, guards, window };
}

/** The load with `calls` calls, from an estimate: linear parts scale with calls, guards need calls. */
export function loadAt(estimate: LoadEstimate, calls: number, maxCalls: number): LoadAt {
  const n = Math.max(0, calls);
  const parts: Record<LoadPart, number> = {
    smartTurn: n * estimate.perCall.smartTurn,
    cpu: n * estimate.perCall.cpu,
    vadLateness: n > 0 ? estimate.guards.vadLateness : 0,
    eventLoop: n > 0 ? estimate.guards.eventLoop : 0,
    maxCalls: n / maxCalls,
  };
  const measuredLoad = Math.max(parts.smartTurn, parts.cpu, parts.vadLateness, parts.eventLoop);
  let limit: LoadPart | null = null;
  for (const part of Object.keys(parts) as LoadPart[]) {
    if (parts[part] > 0 && (limit === null || parts[part] > parts[limit])) limit = part;
  }
  // In (0, 1] (the LoadFigure contract): a call that alone would pass the target still costs one call's worth.
  const loadPerCall = Math.min(1, Math.max(estimate.perCall.smartTurn, estimate.perCall.cpu, 1 / maxCalls));
  return { measuredLoad, parts, loadPerCall, limit };
}

/** Float sums such as 3 x (1/3) must not count as over 1. */
const EPSILON = 1e-9;

/**
 * Full with hysteresis: set when one more call would take the measured load over 1, cleared when one
 * more call would leave `hysteresis` to spare. An engine without calls is never full (see above).
 */
export function nextFull(wasFull: boolean, measuredLoad: number, loadPerCall: number, calls: number, hysteresis: number): boolean {
  if (calls <= 0) return false;
  const withOneMore = measuredLoad + loadPerCall;
  if (!wasFull) return withOneMore > 1 + EPSILON;
  return withOneMore > 1 - hysteresis + EPSILON;
}
