import { beforeAll, describe, expect, it } from 'vitest';
import { SmartTurnPool, type SmartTurnRunRecord } from './smart-turn-pool.ts';
import { resolveModel } from '../../models/model-manager.ts';
import { SMART_TURN_FEATURE_LENGTH } from '../stages/smart-turn-features.ts';

let modelPath: string;
beforeAll(async () => {
  modelPath = await resolveModel('smart-turn-v3.2');
});

const features = () => new Float32Array(SMART_TURN_FEATURE_LENGTH).map(() => Math.random() * 0.1);
const options = () => ({ modelPath, backend: 'native' as const, threads: 1, intraOpThreads: 1, maxBatch: 8, deadlineMs: 10_000, warmUpRuns: 0 });

describe('SmartTurnPool', () => {
  it('keeps one queued request per call and drops it when asked', async () => {
    const pool = new SmartTurnPool(options());
    try {
      const running = pool.predict('a', features());
      const queuedA = pool.predict('a', features());
      const queuedB = pool.predict('b', features());
      const newerA = pool.predict('a', features());
      await expect(queuedA).rejects.toMatchObject({ code: 'VE_SMART_TURN_SUPERSEDED' });
      pool.cancel('b');
      await expect(queuedB).rejects.toMatchObject({ code: 'VE_SMART_TURN_SUPERSEDED' });
      const [first, last] = await Promise.all([running, newerA]);
      for (const answer of [first, last]) {
        expect(answer.probability).toBeGreaterThanOrEqual(0);
        expect(answer.probability).toBeLessThanOrEqual(1);
      }
      expect(pool.stats()).toMatchObject({ requests: 4, superseded: 2, failures: 0, timeouts: 0 });
    } finally {
      await pool.close();
    }
  });

  it('counts the time its thread is busy, runs in flight included, and reports each run\'s queue waits', async () => {
    const runs: SmartTurnRunRecord[] = [];
    const pool = new SmartTurnPool({ ...options(), onRun: (run) => runs.push(run) });
    try {
      // Each run holds the thread 100 ms longer: the second request waits for the first run.
      pool.slowDown(100);
      expect(pool.busyMs()).toBe(0);
      const first = pool.predict('a', features());
      await new Promise((r) => setTimeout(r, 50));
      const inFlight = pool.busyMs();
      expect(inFlight).toBeGreaterThan(0);
      const second = pool.predict('b', features());
      await Promise.all([first, second]);
      // The record follows the answers (the run is finished only once its requests are settled).
      await expect.poll(() => runs.length).toBe(2);
      expect(runs.every((run) => run.runMs >= 100)).toBe(true);
      expect(runs[0].waitsMs[0]).toBeLessThan(runs[1].waitsMs[0]);
      // Busy time is the runs' wall time, and it stops growing when the thread is idle.
      const busy = pool.busyMs();
      expect(busy).toBeCloseTo(runs[0].runMs + runs[1].runMs, 6);
      await new Promise((r) => setTimeout(r, 50));
      expect(pool.busyMs()).toBe(busy);
      expect(pool.stats().busyMs).toBe(busy);
    } finally {
      await pool.close();
    }
  });

  it('closes while a native run is in flight without taking the process down', async () => {
    const pool = new SmartTurnPool(options());
    const answer = pool.predict('a', features());
    await new Promise((r) => setTimeout(r, 10));
    await pool.close();
    // The run in flight was allowed to finish; the process is still here to see its outcome.
    const outcome = await answer.then(
      (a) => a.probability,
      (e: { code: string }) => e.code,
    );
    expect(typeof outcome === 'number' || outcome === 'VE_SMART_TURN_FAILED' || outcome === 'VE_CLOSED').toBe(true);
    await expect(pool.predict('b', features())).rejects.toMatchObject({ code: 'VE_CLOSED' });
  });

  it('answers every request by its deadline on a slowed model: late and queued requests are rejected on time, counted, and a hopeless one never runs', async () => {
    const runs: SmartTurnRunRecord[] = [];
    const pool = new SmartTurnPool({ ...options(), onRun: (run) => runs.push(run) });
    const DEADLINE_MS = 150;
    // How long the caller learns the outcome after asking, and what it was.
    const timed = (promise: Promise<unknown>) => {
      const askedAt = performance.now();
      return promise.then(
        () => ({ code: 'answered', afterMs: performance.now() - askedAt, ran: true }),
        (e: { code: string; ran?: boolean }) => ({ code: e.code, afterMs: performance.now() - askedAt, ran: e.ran }),
      );
    };
    try {
      await pool.warmUp();
      // Each run holds the thread 400 ms longer than the model needs: no run can meet a 150 ms deadline.
      pool.slowDown(400);
      const [running, queued] = await Promise.all([timed(pool.predict('a', features(), DEADLINE_MS)), timed(pool.predict('b', features(), DEADLINE_MS))]);
      expect(running).toMatchObject({ code: 'VE_SMART_TURN_TIMEOUT', ran: true });
      expect(queued).toMatchObject({ code: 'VE_SMART_TURN_TIMEOUT', ran: false });
      // Both outcomes came at the deadline (the bound allows a busy box's timer lateness), not when the run ended.
      for (const outcome of [running, queued]) {
        expect(outcome.afterMs).toBeGreaterThanOrEqual(DEADLINE_MS - 1);
        expect(outcome.afterMs).toBeLessThan(DEADLINE_MS + 100);
      }
      expect(pool.stats()).toMatchObject({ requests: 2, late: 1, expired: 1, timeouts: 2, batches: 1 });
      // Once a run has shown how long runs take, a request that could not finish in time is dropped
      // before it costs a thread, at once.
      await expect.poll(() => runs.length).toBe(1);
      expect(runs[0].runMs).toBeGreaterThanOrEqual(400);
      const hopeless = await timed(pool.predict('c', features(), DEADLINE_MS));
      expect(hopeless).toMatchObject({ code: 'VE_SMART_TURN_TIMEOUT', ran: false });
      expect(hopeless.afterMs).toBeLessThan(DEADLINE_MS);
      expect(pool.stats()).toMatchObject({ requests: 3, late: 1, expired: 2, batches: 1 });
      // The box recovers: a generous deadline is met again.
      pool.slowDown(0);
      expect(await timed(pool.predict('d', features(), 5000))).toMatchObject({ code: 'answered' });
    } finally {
      await pool.close();
    }
  });
});
