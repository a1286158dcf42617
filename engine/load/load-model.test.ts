import { describe, expect, it } from 'vitest';
import { DEFAULT_RUN_MS, MISSED_DEADLINE_MS, estimateLoad, loadAt, nextFull, utilisationCeiling, type LoadWindow } from './load-model.ts';

const T = 300;
const settings = { turnDecisionTargetMs: T, maxCalls: 100 };

/** A window where nothing happened; each case sets what it measures. */
function window(over: Partial<LoadWindow> = {}): LoadWindow {
  return {
    windowMs: 5000,
    meanCalls: 0,
    smartTurnUtilisation: 0,
    turnDecision: { count: 0, p95Ms: Number.NaN },
    smartTurnQueueWaitP95Ms: Number.NaN,
    smartTurnRun: { count: 0, p50Ms: Number.NaN },
    vadLatenessP95Ms: Number.NaN,
    eventLoopDelayP99Ms: Number.NaN,
    cpuShare: 0,
    ...over,
  };
}

describe('utilisationCeiling', () => {
  it('is where L(ρ) = L0 / (1 - ρ) through the measured point reaches the target', () => {
    // Measured 150 ms at ρ = 0.4: L0 = 90 ms, and 90 / (1 - ρ*) = 300 at ρ* = 0.7.
    expect(utilisationCeiling(150, 0.4, T)).toBeCloseTo(0.7, 9);
    // A p95 exactly at the target puts the ceiling at the measured utilisation.
    expect(utilisationCeiling(T, 0.55, T)).toBeCloseTo(0.55, 9);
  });

  it('stays inside [0.05, 0.95]: a run slower than the target, an idle thread with fast runs', () => {
    expect(utilisationCeiling(400, 0, T)).toBe(0.05);
    expect(utilisationCeiling(1, 0, T)).toBe(0.95);
  });

  it('reads a saturated thread (ρ = 1) as over its ceiling', () => {
    expect(utilisationCeiling(1900, 1, T)).toBeLessThan(1);
  });

  it('reads missed deadlines in the p95 as no room at all, although the fallback capped what callers felt', () => {
    // More than 5 % of the window's requests missed their deadline: its p95 is a missed one.
    expect(utilisationCeiling(MISSED_DEADLINE_MS, 0.5, T)).toBe(0.05);
  });
});

describe('estimateLoad + loadAt: these measurements in, this load out', () => {
  it('an engine that measured nothing has no load, one call costing the hard-cap share', () => {
    const estimate = estimateLoad(window(), settings);
    expect(estimate.utilisationCeiling).toBeCloseTo(1 - DEFAULT_RUN_MS / T, 9);
    const at = loadAt(estimate, 0, 100);
    expect(at).toMatchObject({ measuredLoad: 0, loadPerCall: 0.01, limit: null });
  });

  it('Smart Turn utilisation against its ceiling, linear in calls', () => {
    // 20 calls kept the thread 40 % busy with a decision p95 of 150 ms: ρ* = 0.7, so each call is
    // 0.02 / 0.7 of the load and the 20 calls are 0.4 / 0.7 of it.
    const estimate = estimateLoad(window({ meanCalls: 20, smartTurnUtilisation: 0.4, turnDecision: { count: 60, p95Ms: 150 } }), settings);
    const at20 = loadAt(estimate, 20, 100);
    expect(at20.limit).toBe('smartTurn');
    expect(at20.measuredLoad).toBeCloseTo(0.4 / 0.7, 9);
    expect(at20.loadPerCall).toBeCloseTo(0.02 / 0.7, 9);
    // A call admitted since the window counts at once, at the measured cost.
    expect(loadAt(estimate, 21, 100).measuredLoad).toBeCloseTo(0.42 / 0.7, 9);
    // 34 calls: one more (35 x 0.02 = 0.7 = ρ*) would just reach the ceiling; 35 would pass it.
    expect(nextFull(false, loadAt(estimate, 33, 100).measuredLoad, at20.loadPerCall, 33, 0.1)).toBe(false);
    expect(nextFull(false, loadAt(estimate, 35, 100).measuredLoad, at20.loadPerCall, 35, 0.1)).toBe(true);
  });

  it('a decision p95 at the target is a load of exactly 1 at the calls measured; over it, more than 1', () => {
    const at = (p95Ms: number) => loadAt(estimateLoad(window({ meanCalls: 30, smartTurnUtilisation: 0.6, turnDecision: { count: 80, p95Ms } }), settings), 30, 100);
    expect(at(T).measuredLoad).toBeCloseTo(1, 9);
    expect(at(345).measuredLoad).toBeGreaterThan(1);
    expect(at(200).measuredLoad).toBeLessThan(1);
  });

  it('a saturated Smart Turn thread whose requests wait seconds is over 1', () => {
    const estimate = estimateLoad(window({ meanCalls: 50, smartTurnUtilisation: 1, turnDecision: { count: 40, p95Ms: 1900 }, smartTurnQueueWaitP95Ms: 1500 }), settings);
    expect(loadAt(estimate, 50, 100).measuredLoad).toBeGreaterThan(1);
  });

  it('a call that alone passes the target costs at most the whole load', () => {
    // Runs slower than the target: the ceiling is at its floor and one call's share is past 1.
    const estimate = estimateLoad(window({ meanCalls: 2, smartTurnUtilisation: 0.5, turnDecision: { count: 12, p95Ms: 700 } }), settings);
    expect(estimate.utilisationCeiling).toBe(0.05);
    expect(loadAt(estimate, 2, 100).loadPerCall).toBe(1);
  });

  it('with too few decisions for a p95, the ceiling comes from the median run', () => {
    const estimate = estimateLoad(window({ meanCalls: 2, smartTurnUtilisation: 0.02, turnDecision: { count: 3, p95Ms: 900 }, smartTurnRun: { count: 3, p50Ms: 60 } }), settings);
    // One slow decision out of three says little; the runs say a lone request is answered in 60 ms.
    expect(estimate.utilisationCeiling).toBeCloseTo(0.8, 9);
  });

  it('process CPU against its ceiling is the limit when it is the largest part', () => {
    const estimate = estimateLoad(window({ meanCalls: 10, smartTurnUtilisation: 0.05, turnDecision: { count: 20, p95Ms: 80 }, cpuShare: 0.6 }), settings);
    const at = loadAt(estimate, 10, 100);
    expect(at.limit).toBe('cpu');
    expect(at.measuredLoad).toBeCloseTo(0.6 / 0.9, 9);
    expect(at.loadPerCall).toBeCloseTo(0.06 / 0.9, 9);
  });

  it('VAD lateness and event-loop delay are guards at half the target, counted only while calls are held', () => {
    const estimate = estimateLoad(window({ meanCalls: 3, vadLatenessP95Ms: 75, eventLoopDelayP99Ms: 165 }), settings);
    expect(estimate.guards.vadLateness).toBeCloseTo(0.5, 9);
    expect(estimate.guards.eventLoop).toBeCloseTo(1.1, 9);
    const held = loadAt(estimate, 3, 100);
    expect(held.limit).toBe('eventLoop');
    expect(nextFull(false, held.measuredLoad, held.loadPerCall, 3, 0.1)).toBe(true);
    // A lagging engine without calls still takes one: only a call's own work can show what it costs.
    const idle = loadAt(estimate, 0, 100);
    expect(idle.measuredLoad).toBe(0);
    expect(nextFull(true, idle.measuredLoad, idle.loadPerCall, 0, 0.1)).toBe(false);
  });

  it('the per-call cost never goes under 1 / maxCalls, and the cap is its own part', () => {
    const estimate = estimateLoad(window({ meanCalls: 10, smartTurnUtilisation: 0.01, turnDecision: { count: 20, p95Ms: 60 } }), { turnDecisionTargetMs: T, maxCalls: 20 });
    const at = loadAt(estimate, 10, 20);
    expect(at.loadPerCall).toBe(1 / 20);
    expect(at.parts.maxCalls).toBe(0.5);
    expect(at.measuredLoad).toBeLessThan(0.5);
  });

  it('a window without calls keeps the per-call cost and ceiling measured before', () => {
    const busy = estimateLoad(window({ meanCalls: 20, smartTurnUtilisation: 0.4, turnDecision: { count: 60, p95Ms: 150 }, cpuShare: 0.3 }), settings);
    const quiet = estimateLoad(window(), settings, busy);
    expect(quiet.perCall).toEqual(busy.perCall);
    expect(quiet.utilisationCeiling).toBe(busy.utilisationCeiling);
    // ...and the next call is priced at that cost, not at zero.
    expect(loadAt(quiet, 1, 100).loadPerCall).toBeCloseTo(0.02 / 0.7, 9);
  });
});

describe('nextFull: hysteresis', () => {
  it('sets when one more call would pass 1 and clears only with the margin to spare', () => {
    const perCall = 0.05;
    const steps: Array<[load: number, expected: boolean]> = [
      [0.9, false], // 0.95: one more fits
      [0.96, true], // 1.01: one more would not
      [0.93, true], // 0.98: fits again, but within the margin
      [0.86, true], // 0.91
      [0.85, false], // 0.90: 0.1 to spare
      [0.9, false],
    ];
    let full = false;
    for (const [load, expected] of steps) {
      full = nextFull(full, load, perCall, 10, 0.1);
      expect([load, full]).toEqual([load, expected]);
    }
  });
});
