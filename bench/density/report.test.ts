import { describe, expect, it } from 'vitest';
import type { EngineRunResult } from './common.ts';
import type { PeerRunResult } from './peer-runner.ts';
import { ratios, resultRows, targets, withMarginalRss } from './report.ts';

const latency = (p50: number, p95: number, p99: number) => ({ count: 100, p50, p95, p99, max: p99 });

function engineRun(calls: number, overrides: Partial<EngineRunResult> = {}): EngineRunResult {
  return {
    arch: 'engine',
    backend: 'native',
    calls,
    workers: 2,
    turnWorkers: 1,
    measuredMs: 30_000,
    engineStartMs: 1000,
    frameLatencyMs: latency(2, 5, 8),
    stopToTurnDecisionMs: latency(60, 120, 200),
    droppedSamples: 0,
    feeder: { ticks: 1, framesWritten: 1, lagMs: latency(1, 2, 3), lateFrames: 0 },
    eventLoopDelayP99Ms: 11,
    cpuPercentTotal: calls * 2,
    cpuPercentPerCall: calls > 0 ? 2 : null,
    otherCpuPercent: 5,
    loadAverage: { atStart: 1, atEnd: 1 },
    rssMb: { mean: 300 + calls * 2, max: 310 + calls * 2 },
    rssPerCallMb: calls > 0 ? (300 + calls * 2) / calls : null,
    vad: { batches: 10, meanBatchSize: calls / 2 },
    smartTurn: { requests: 10, batches: 8, failures: 0, queuedAtEnd: 0 },
    events: { speechStarts: 10, speechEnds: 10, turnsByModel: 5, turnsBySilence: 1, turnsByDeadline: 0, smartTurnErrors: 0, overflows: 0 },
    workerRestarts: 0,
    ...overrides,
  };
}

function peerRun(calls: number, rssPerCallMb: number, cpuPercentPerCall: number): PeerRunResult {
  return {
    arch: 'peer',
    backend: 'native',
    calls,
    measuredMs: 30_000,
    loadMs: { mean: 500, max: 900 },
    frameLatencyMs: latency(1, 2, 3),
    stopToTurnDecisionMs: latency(50, 80, 90),
    featureMs: latency(5, 6, 7),
    eventLoopDelayP99Ms: { max: 12, median: 10.5 },
    droppedSamples: 0,
    pendingWindowsAtEnd: 0,
    feeder: { lateFrames: 0, lagP99MaxMs: 5 },
    cpuPercentTotal: cpuPercentPerCall * calls,
    cpuPercentPerCall,
    otherCpuPercent: 5,
    loadAverage: { atStart: 1, atEnd: 1 },
    rssMb: { mean: rssPerCallMb * calls, max: rssPerCallMb * calls },
    rssPerCallMb,
    idleRssPerProcessMb: rssPerCallMb - 5,
    smartTurn: { requests: 10, failures: 0 },
    events: { speechStarts: 10, speechEnds: 10, turnsByModel: 5, turnsBySilence: 1 },
  };
}

describe('density report', () => {
  const idle = engineRun(0);

  it('marginal RSS per call subtracts the idle engine', () => {
    expect(withMarginalRss(engineRun(50), idle).marginalRssPerCallMb).toBeCloseTo(2);
    expect(withMarginalRss(idle, undefined).marginalRssPerCallMb).toBeNull();
  });

  it('compares peer and engine only at equal N', () => {
    const engines = [withMarginalRss(engineRun(25), idle), withMarginalRss(engineRun(100), idle)];
    const rows = ratios(engines, [peerRun(10, 180, 4), peerRun(25, 180, 4)]);
    expect(rows.filter((r) => !r.extrapolated)).toHaveLength(1);
    expect(rows[0].N).toBe(25);
    expect(rows[0].peerN).toBe(25);
    expect(rows[0].memoryPerCall).toBeCloseTo(180 / 14, 2);
    expect(rows[0].memoryPerCallMarginal).toBeCloseTo(90, 2);
    expect(rows[0].cpuPerCall).toBeCloseTo(2, 2);
    // N = 100 has no peer run: compared with the largest peer run, and marked as such.
    expect(rows[1]).toMatchObject({ N: 100, peerN: 25, extrapolated: true });
  });

  it('judges no target on an extrapolated comparison', () => {
    const engines = [withMarginalRss(engineRun(100), idle)];
    expect(targets(engines, ratios(engines, [peerRun(25, 180, 4)])).filter((t) => t.target.includes('per call'))).toEqual([]);
  });

  it('judges the targets from the numbers, failing those that are missed', () => {
    const good = withMarginalRss(engineRun(100), idle);
    const slow = withMarginalRss(engineRun(100, { backend: 'wasm', frameLatencyMs: latency(5, 30, 40), droppedSamples: 960, stopToTurnDecisionMs: latency(300, 900, 1500) }), idle);
    const timingOut = withMarginalRss(
      engineRun(100, { backend: 'timeouts' as 'wasm', events: { ...engineRun(100).events, smartTurnErrors: 3 } }),
      idle,
    );
    const small = withMarginalRss(engineRun(25), idle);
    const result = targets([good, slow, timingOut, small], ratios([small], [peerRun(25, 180, 1)]));
    const met = (backend: string, prefix: string) => result.find((t) => t.backend === backend && t.target.startsWith(prefix))?.met;
    expect(met('native', 'p99 frame')).toBe(true);
    expect(met('wasm', 'p99 frame')).toBe(false);
    expect(met('native', 'zero drops')).toBe(true);
    expect(met('wasm', 'zero drops')).toBe(false);
    expect(met('wasm', 'stop-to-decision')).toBe(false);
    expect(met('native', 'stop-to-decision')).toBe(true);
    // Fast answers do not pass when some requests timed out instead of answering.
    expect(met('timeouts', 'stop-to-decision')).toBe(false);
    // 25 calls is below the 100-call latency targets, but counts for the per-call comparisons.
    expect(result.filter((t) => t.N === 25).map((t) => t.target)).toEqual([
      '>= 10x less memory per call than process-per-call',
      'no more CPU per call than process-per-call',
    ]);
    expect(met('native', '>= 10x')).toBe(true); // 180 vs 14 MB per call
    expect(met('native', 'no more CPU')).toBe(false); // peer 1 %, engine 2 %
  });

  it('fails a latency target that has no samples at all (NaN became null in JSON)', () => {
    const none = { count: 0, p50: null, p95: null, p99: null, max: null } as unknown as EngineRunResult['frameLatencyMs'];
    const run = withMarginalRss(engineRun(100, { stopToTurnDecisionMs: none, frameLatencyMs: none }), idle);
    const result = targets([run], []);
    expect(result.find((t) => t.target.startsWith('stop-to-decision'))?.met).toBe(false);
    expect(result.find((t) => t.target.startsWith('p99 frame'))?.met).toBe(false);
  });

  it('makes one table row per run with calls, the idle base left out', () => {
    const rows = resultRows([withMarginalRss(idle, undefined), withMarginalRss(engineRun(25), idle)], [peerRun(10, 180, 4)]);
    expect(rows.map((r) => [r.arch, r.N])).toEqual([
      ['engine', 25],
      ['peer', 10],
    ]);
    expect(rows[0]['loop p99 ms']).toBe(1);
  });
});
