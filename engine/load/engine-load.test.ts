import { describe, expect, it } from 'vitest';
import { JobLedger } from '../dispatch/job-ledger.ts';
import { EngineLoad, type LoadProbe, type LoadSampleSink } from './engine-load.ts';

/** A stand-in engine: calls, Smart Turn busy time and CPU set by the test, on a fake clock. */
class FakeProbe implements LoadProbe {
  calls = 0;
  busyMs = 0;
  cpuUs = 0;
  nowMs = 0;
  readonly smartTurnThreads = 1;
  sinks = new Set<LoadSampleSink>();

  activeCalls(): number {
    return this.calls;
  }

  smartTurnBusyMs(): number {
    return this.busyMs;
  }

  subscribe(sink: LoadSampleSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }
}

function setUp(opts: { maxCalls?: number } = {}) {
  const probe = new FakeProbe();
  const load = new EngineLoad(probe, {
    turnDecisionTargetMs: 300,
    maxCalls: opts.maxCalls ?? 100,
    sampleIntervalMs: 1000,
    windowMs: 5000,
    sampleEventLoop: false,
    cpu: { usageUs: () => probe.cpuUs, cores: 2 },
    now: () => probe.nowMs,
  });
  /** One second in which the Smart Turn thread was busy `utilisation` of the time and decided `decisions` turns in `decisionMs`. */
  const second = (s: { utilisation?: number; decisions?: number; decisionMs?: number; cpuShare?: number } = {}) => {
    for (let i = 0; i < (s.decisions ?? 0); i++) {
      for (const sink of probe.sinks) {
        sink.turnDecision(s.decisionMs ?? 100);
        sink.smartTurnQueueWait((s.decisionMs ?? 100) / 2);
        sink.smartTurnRun((s.decisionMs ?? 100) / 2);
      }
    }
    probe.nowMs += 1000;
    probe.busyMs += 1000 * (s.utilisation ?? 0);
    probe.cpuUs += 1000 * 1000 * 2 * (s.cpuShare ?? 0);
    load.tick();
  };
  return { probe, load, second };
}

describe('EngineLoad', () => {
  it('turns a window of measurements into the load, its parts and the cost of one more call', () => {
    const { probe, load, second } = setUp();
    probe.calls = 20;
    for (let i = 0; i < 5; i++) second({ utilisation: 0.4, decisions: 12, decisionMs: 150, cpuShare: 0.3 });
    const report = load.report();
    // ρ = 0.4 with a p95 of 150 ms: ρ* = 0.7 (load-model.ts), so 20 calls are 0.4 / 0.7 of the load.
    expect(report.measured).toMatchObject({ windowMs: 5000, meanCalls: 20, turnDecisions: 60, turnDecisionP95Ms: 150, smartTurnQueueWaitP95Ms: 75, cpuPercent: 60 });
    expect(report.measured.smartTurnUtilisation).toBeCloseTo(0.4, 9);
    expect(report.measured.smartTurnUtilisationCeiling).toBeCloseTo(0.7, 9);
    expect(report.load).toBeCloseTo(0.4 / 0.7, 9);
    expect(report.loadPerCall).toBeCloseTo(0.02 / 0.7, 9);
    expect(report).toMatchObject({ full: false, calls: 20, limit: 'smartTurn', turnDecisionTargetMs: 300 });
    expect(report.parts.cpu).toBeCloseTo(0.3 / 0.9, 9);
    expect(load.figure()).toEqual({ load: report.load, loadPerCall: report.loadPerCall });
    expect(load.metrics()).toMatchObject({ load: report.load, load_full: 0, load_window_turn_decision_p95_ms: 150 });
  });

  it('counts a call admitted since the last sample at once, so two admissions in a row cannot share a slot', () => {
    const { probe, load, second } = setUp();
    probe.calls = 20;
    for (let i = 0; i < 5; i++) second({ utilisation: 0.4, decisions: 12, decisionMs: 150 });
    // No sample between these: every call the engine takes raises the figure it gives the next request.
    const ledger = new JobLedger<null>();
    const before = load.figure().load;
    probe.calls = 21;
    expect(load.figure().load).toBeGreaterThan(before);
    // 34 calls: one more fits (35 x 0.02 = ρ*); 35: it does not.
    probe.calls = 34;
    expect(load.report().full).toBe(false);
    expect(ledger.admit('a', load.figure(), null).accepted).toBe(true);
    probe.calls = 35;
    expect(load.report().full).toBe(true);
    expect(load.figure().load).toBe(1);
    expect(ledger.admit('b', load.figure(), null)).toMatchObject({ accepted: false, reason: 'full' });
  });

  it('stays full until one more call would leave the hysteresis margin, then falls with the window', () => {
    const { probe, load, second } = setUp();
    probe.calls = 30;
    // The decision p95 is over the target: full.
    for (let i = 0; i < 5; i++) second({ utilisation: 0.8, decisions: 20, decisionMs: 400 });
    expect(load.report()).toMatchObject({ full: true, load: 1, limit: 'smartTurn' });
    // ρ* = 1 - 400 x 0.2 / 300 = 0.733, so a call costs 0.8 / 30 / 0.733 = 0.036. At 26 calls one more
    // (27 x 0.036 = 0.98) would fit, but within the 0.1 margin: still full, or it would flap at the edge.
    probe.calls = 26;
    expect(load.report().full).toBe(true);
    expect(load.report().load).toBe(1);
    // At 23 calls one more (24 x 0.036 = 0.87) leaves the margin: it takes calls again.
    probe.calls = 23;
    expect(load.report().full).toBe(false);
    expect(load.report().load).toBeCloseTo((23 * 0.8) / 30 / (1 - (400 * 0.2) / 300), 9);
    probe.calls = 26;
    expect(load.report().full).toBe(false);
    // The calls end: the engine takes calls again at once...
    probe.calls = 0;
    expect(load.report()).toMatchObject({ full: false, load: 0 });
    // ...and the window forgets the saturated seconds as new ones come in.
    for (let i = 0; i < 5; i++) second();
    expect(load.report().measured.smartTurnUtilisation).toBe(0);
    expect(load.report().measured.turnDecisions).toBe(0);
  });

  it('is full at the hard cap whatever was measured, and admits again just under it', () => {
    const { probe, load } = setUp({ maxCalls: 4 });
    probe.calls = 4;
    expect(load.report()).toMatchObject({ full: true, load: 1, loadPerCall: 0.25 });
    probe.calls = 3;
    expect(load.report()).toMatchObject({ full: false, load: 0.75 });
  });

  it('close() unsubscribes and is idempotent', () => {
    const { probe, load } = setUp();
    expect(probe.sinks.size).toBe(1);
    load.close();
    load.close();
    expect(probe.sinks.size).toBe(0);
  });
});
