import { describe, expect, it } from 'vitest';
import { JobLedger } from './job-ledger.ts';
import type { LoadFigure } from './load.ts';

/** Three slots, two in use: what the engine's load says while neither new job is hosted yet. */
const ONE_SLOT_LEFT: LoadFigure = { load: 2 / 3, loadPerCall: 1 / 3 };

describe('JobLedger admission', () => {
  it('gives the last slot to one of two requests that see the same load (agents#4884)', () => {
    const ledger = new JobLedger<null>();
    const first = ledger.admit('AJ_1', ONE_SLOT_LEFT, null);
    const second = ledger.admit('AJ_2', ONE_SLOT_LEFT, null);
    expect(first).toEqual({ accepted: true, loadAfter: 1 });
    expect(second).toMatchObject({ accepted: false, reason: 'full' });
    expect(ledger.report(ONE_SLOT_LEFT)).toEqual({ load: 1, full: true, jobCount: 1 });
  });

  it('keeps counting a job while it is assigned and hosted, until the engine load includes it', () => {
    const ledger = new JobLedger<null>();
    ledger.admit('AJ_1', ONE_SLOT_LEFT, null);
    ledger.move('AJ_1', 'starting');
    expect(ledger.admit('AJ_2', ONE_SLOT_LEFT, null)).toMatchObject({ accepted: false, reason: 'full' });
    ledger.move('AJ_1', 'running');
    // Hosted: now the engine reports it; the ledger stops adding it.
    const hosted = { load: 1, loadPerCall: 1 / 3 };
    expect(ledger.report(hosted)).toEqual({ load: 1, full: true, jobCount: 1 });
    expect(ledger.admit('AJ_2', hosted, null)).toMatchObject({ accepted: false, reason: 'full' });
    ledger.release('AJ_1');
    expect(ledger.admit('AJ_2', ONE_SLOT_LEFT, null)).toMatchObject({ accepted: true });
  });

  it('reports full exactly when the next request would be refused', () => {
    const ledger = new JobLedger<null>();
    const empty = { load: 0, loadPerCall: 1 / 3 };
    expect(ledger.report(empty).full).toBe(false);
    ledger.admit('a', empty, null);
    ledger.admit('b', empty, null);
    expect(ledger.report(empty)).toMatchObject({ full: false, jobCount: 2 });
    ledger.admit('c', empty, null);
    expect(ledger.report(empty)).toMatchObject({ full: true, load: 1, jobCount: 3 });
  });

  it('honours a threshold under 1 and treats a broken load figure as full', () => {
    const ledger = new JobLedger<null>({ loadThreshold: 0.5 });
    expect(ledger.admit('a', { load: 0.3, loadPerCall: 0.1 }, null).accepted).toBe(true);
    expect(ledger.admit('b', { load: 0.3, loadPerCall: 0.1 }, null).accepted).toBe(true);
    expect(ledger.admit('c', { load: 0.3, loadPerCall: 0.1 }, null)).toMatchObject({ accepted: false, reason: 'full' });
    const fresh = new JobLedger<null>();
    expect(fresh.admit('x', { load: Number.NaN, loadPerCall: 0.1 }, null)).toMatchObject({ accepted: false, reason: 'full' });
    // A source that says calls cost nothing still cannot hand out unlimited slots at once.
    for (let i = 0; i < 1000; i++) fresh.admit(`z${i}`, { load: 0, loadPerCall: 0 }, null);
    expect(fresh.admit('one-too-many', { load: 0, loadPerCall: 0 }, null)).toMatchObject({ accepted: false, reason: 'full' });
  });

  it('refuses duplicates and everything once draining', () => {
    const ledger = new JobLedger<null>();
    const idle = { load: 0, loadPerCall: 0.1 };
    ledger.admit('a', idle, null);
    expect(ledger.admit('a', idle, null)).toMatchObject({ accepted: false, reason: 'duplicate' });
    ledger.drain();
    expect(ledger.admit('b', idle, null)).toMatchObject({ accepted: false, reason: 'draining' });
    expect(ledger.report(idle).full).toBe(true);
  });
});
