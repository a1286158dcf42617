/**
 * Turns the measurements into what a reader compares: one row per (architecture, backend, N), the
 * peer/engine ratios at equal N, and the density targets with whether each was met.
 */
import { loopDelayOverTimerMs, type EngineRunResult } from './common.ts';
import type { PeerRunResult } from './peer-runner.ts';

/** An engine run with the idle engine's RSS subtracted: what each extra call really costs. */
export interface EngineRunWithBase extends EngineRunResult {
  marginalRssPerCallMb: number | null;
}

export function withMarginalRss(run: EngineRunResult, idle: EngineRunResult | undefined): EngineRunWithBase {
  const marginal = idle !== undefined && run.calls > 0 ? (run.rssMb.mean - idle.rssMb.mean) / run.calls : null;
  return { ...run, marginalRssPerCallMb: marginal };
}

const round = (value: number | null | undefined, digits = 1): number | null => {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

/** Others' CPU during the run, with '!' when it stayed above the limit on every attempt. */
const others = (r: { otherCpuPercent: number; contended?: boolean }) => `${round(r.otherCpuPercent, 0) ?? '-'}${r.contended ? ' !' : ''}`;

export type TableRow = Record<string, string | number | null>;

const pair = (a: number, b: number, digits = 1) => `${round(a, digits) ?? '-'} / ${round(b, digits) ?? '-'}`;

/**
 * One row per (architecture, backend, N). Loop delay is the excess over the monitor's 10 ms timer (see
 * `loopDelayOverTimerMs`); for peers it is the worst process's p99.
 */
export function resultRows(engineRuns: EngineRunWithBase[], peerRuns: PeerRunResult[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const r of engineRuns) {
    if (r.calls === 0) continue;
    rows.push({
      arch: 'engine',
      backend: r.backend,
      N: r.calls,
      'frame ms p50/p99': pair(r.frameLatencyMs.p50, r.frameLatencyMs.p99),
      'stop→turn ms p50/p95': pair(r.stopToTurnDecisionMs.p50, r.stopToTurnDecisionMs.p95, 0),
      drops: r.droppedSamples,
      'late frames': r.feeder.lateFrames,
      'loop p99 ms': round(loopDelayOverTimerMs(r.eventLoopDelayP99Ms)),
      'CPU %/call': round(r.cpuPercentPerCall, 2),
      'RSS MB/call': round(r.rssPerCallMb),
      'marginal MB/call': round(r.marginalRssPerCallMb, 2),
      'VAD batch': round(r.vad.meanBatchSize),
      // Errors as the calls saw them: timeouts are not counted in the pool's `failures`.
      'ST req/batch/err': `${r.smartTurn.requests}/${r.smartTurn.batches}/${r.events.smartTurnErrors}`,
      'turns model/silence/deadline': `${r.events.turnsByModel}/${r.events.turnsBySilence}/${r.events.turnsByDeadline}`,
      "others' CPU %": others(r),
    });
  }
  for (const r of peerRuns) {
    rows.push({
      arch: 'peer',
      backend: r.backend,
      N: r.calls,
      'frame ms p50/p99': pair(r.frameLatencyMs.p50, r.frameLatencyMs.p99),
      'stop→turn ms p50/p95': pair(r.stopToTurnDecisionMs.p50, r.stopToTurnDecisionMs.p95, 0),
      drops: r.droppedSamples,
      'late frames': r.feeder.lateFrames,
      'loop p99 ms': round(loopDelayOverTimerMs(r.eventLoopDelayP99Ms.max)),
      'CPU %/call': round(r.cpuPercentPerCall, 2),
      'RSS MB/call': round(r.rssPerCallMb),
      // Every process is a call: the whole process is the marginal cost.
      'marginal MB/call': round(r.rssPerCallMb, 2),
      'VAD batch': 1,
      'ST req/batch/err': `${r.smartTurn.requests}/${r.smartTurn.requests}/${r.smartTurn.failures}`,
      'turns model/silence': `${r.events.turnsByModel}/${r.events.turnsBySilence}`,
      "others' CPU %": others(r),
    });
  }
  return rows;
}

export interface Ratio {
  N: number;
  engineBackend: string;
  /** The peer run compared with: N itself, or the largest peer run when none was run at N (`extrapolated`). */
  peerN: number;
  /** Peer RSS per call / engine RSS per call (whole process divided by N). */
  memoryPerCall: number | null;
  /** Peer RSS per call / engine marginal RSS per call. */
  memoryPerCallMarginal: number | null;
  /** Peer CPU per call / engine CPU per call; > 1 means the engine uses less. */
  cpuPerCall: number | null;
  extrapolated: boolean;
}

/**
 * Peer/engine ratios. At equal N first: the engine's per-call costs fall with N, so comparing across N
 * would flatter it. For an engine N above every peer run, a row against the largest peer run is added and
 * marked `extrapolated`: a peer process costs the same whatever N (each is alone with its call), but
 * the peers could not actually run that many calls on the same machine.
 */
export function ratios(engineRuns: EngineRunWithBase[], peerRuns: PeerRunResult[]): Ratio[] {
  const out: Ratio[] = [];
  const div = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? round(a / b, 2) : null);
  const compare = (peer: PeerRunResult, engine: EngineRunWithBase): Ratio => ({
    N: engine.calls,
    engineBackend: engine.backend,
    peerN: peer.calls,
    memoryPerCall: div(peer.rssPerCallMb, engine.rssPerCallMb),
    memoryPerCallMarginal: div(peer.rssPerCallMb, engine.marginalRssPerCallMb),
    cpuPerCall: div(peer.cpuPercentPerCall, engine.cpuPercentPerCall),
    extrapolated: peer.calls !== engine.calls,
  });
  for (const peer of peerRuns) {
    for (const engine of engineRuns.filter((e) => e.calls === peer.calls && e.calls > 0)) out.push(compare(peer, engine));
  }
  const largestPeer = peerRuns.reduce<PeerRunResult | undefined>((best, p) => (best === undefined || p.calls > best.calls ? p : best), undefined);
  if (largestPeer !== undefined) {
    for (const engine of engineRuns.filter((e) => e.calls > largestPeer.calls)) out.push(compare(largestPeer, engine));
  }
  return out;
}

export interface Target {
  target: string;
  backend: string;
  N: number | null;
  value: string;
  met: boolean | null;
}

/** JSON turns NaN (no samples) into null, and `null < 20` is true in JavaScript: only a real number passes. */
function below(value: number | null, limit: number): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value < limit;
}

/** The density targets of the project, judged on every engine run they apply to. */
export function targets(engineRuns: EngineRunWithBase[], ratioRows: Ratio[]): Target[] {
  const out: Target[] = [];
  for (const r of engineRuns) {
    if (r.calls < 100) continue;
    out.push({ target: 'p99 frame-to-decision < 20 ms at >= 100 calls', backend: r.backend, N: r.calls, value: `${round(r.frameLatencyMs.p99) ?? '-'} ms`, met: below(r.frameLatencyMs.p99, 20) });
    out.push({ target: 'zero drops at >= 100 calls', backend: r.backend, N: r.calls, value: `${r.droppedSamples} samples`, met: r.droppedSamples === 0 });
    out.push({
      target: 'stop-to-decision p95 < 250 ms at >= 100 calls',
      backend: r.backend,
      N: r.calls,
      value: `${round(r.stopToTurnDecisionMs.p95, 0) ?? 'no answer'} ms (${r.events.smartTurnErrors} of ${r.smartTurn.requests} requests failed; ${r.events.turnsByDeadline} turns decided after a missed deadline)`,
      met: below(r.stopToTurnDecisionMs.p95, 250) && r.events.smartTurnErrors === 0,
    });
  }
  // Targets are judged at equal N only.
  for (const ratio of ratioRows.filter((r) => !r.extrapolated)) {
    out.push({
      target: '>= 10x less memory per call than process-per-call',
      backend: ratio.engineBackend,
      N: ratio.N,
      value: `${ratio.memoryPerCall}x (RSS/N), ${ratio.memoryPerCallMarginal}x (marginal)`,
      met: ratio.memoryPerCall === null ? null : ratio.memoryPerCall >= 10,
    });
    out.push({
      target: 'no more CPU per call than process-per-call',
      backend: ratio.engineBackend,
      N: ratio.N,
      value: `peer/engine ${ratio.cpuPerCall}x`,
      met: ratio.cpuPerCall === null ? null : ratio.cpuPerCall >= 1,
    });
  }
  return out;
}

export interface FailedRun {
  arch: string;
  backend: string;
  calls: number;
  error: string;
}

/** Prints every table of a density run (also used to re-render a saved results file) and returns the derived rows. */
export function printReport(
  title: string,
  engineRuns: EngineRunWithBase[],
  peerRuns: PeerRunResult[],
  failedRuns: FailedRun[],
): { rows: TableRow[]; ratios: Ratio[]; targets: Target[] } {
  const rows = resultRows(engineRuns, peerRuns);
  const ratioRows = ratios(engineRuns, peerRuns);
  const targetRows = targets(engineRuns, ratioRows);
  console.log(title);
  console.table(rows);
  const idleRows = [
    ...engineRuns.filter((r) => r.calls === 0).map((r) => ({ what: `idle engine, ${r.backend}`, 'RSS MB': Math.round(r.rssMb.mean), 'start ms': r.engineStartMs })),
    ...peerRuns.map((r) => ({ what: `idle peer process (of ${r.calls})`, 'RSS MB': Math.round(r.idleRssPerProcessMb), 'start ms': Math.round(r.loadMs.max) })),
  ];
  if (idleRows.length > 0) console.table(idleRows);
  if (ratioRows.length > 0) {
    console.log('Peer / engine per call (> 1: the engine uses less); extrapolated rows compare with the largest peer run');
    console.table(ratioRows);
  }
  if (targetRows.length > 0) console.table(targetRows);
  if (failedRuns.length > 0) console.table(failedRuns);
  return { rows, ratios: ratioRows, targets: targetRows };
}
