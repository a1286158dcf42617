import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppendResult, CallEvent, CallRecord, TranscriptSegment, TurnLatency } from './call-store.ts';
import { makeEvent, makeSegment } from './call-store.contract.ts';
import { EmbeddedCallStore } from './embedded-store.ts';
import { StoreInvalidInputError, StoreUnavailableError } from './errors.ts';
import { Outbox, type OutboxTarget } from './outbox.ts';

/** A real store behind switches: `down` fails every write, `poison` rejects chosen ids, `loseAcks` writes but then throws. */
class SwitchableTarget implements OutboxTarget {
  readonly store: EmbeddedCallStore;
  down = false;
  loseAcks = 0;
  poison = new Set<string>();
  /** Every id the target was asked to write, in order, including failed attempts. */
  attempts: string[] = [];

  constructor(dataDir: string) {
    this.store = EmbeddedCallStore.open({ dataDir });
  }

  async appendEvents(events: CallEvent[]): Promise<AppendResult> {
    return this.#guard(events.map((e) => e.eventId), () => this.store.appendEvents(events));
  }

  async appendSegments(segments: TranscriptSegment[]): Promise<AppendResult> {
    return this.#guard(segments.map((s) => s.segmentId), () => this.store.appendSegments(segments));
  }

  async appendLatency(callId: string, latency: TurnLatency): Promise<CallRecord> {
    return this.#guard([`latency:${latency.turnId}`], () => this.store.appendLatency(callId, latency));
  }

  async #guard<T>(ids: string[], write: () => Promise<T>): Promise<T> {
    this.attempts.push(...ids);
    await new Promise((resolve) => setImmediate(resolve));
    if (this.down) throw new StoreUnavailableError('test outage');
    const bad = ids.find((id) => this.poison.has(id));
    if (bad) throw new StoreInvalidInputError(`bad ${bad}`);
    const result = await write();
    if (this.loseAcks > 0) {
      this.loseAcks--;
      throw new StoreUnavailableError('connection dropped before the acknowledgement');
    }
    return result;
  }
}

describe('Outbox', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  function setup(options: { batchSize?: number } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const target = new SwitchableTarget(join(dir, 'store'));
    const journalDir = join(dir, 'journal');
    const open = () => {
      const outbox = Outbox.open({ dataDir: journalDir, store: target, minBackoffMs: 5, maxBackoffMs: 20, flushDelayMs: 1, ...options });
      cleanups.push(() => outbox.close());
      return outbox;
    };
    cleanups.push(async () => {
      await target.store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return { target, open };
  }

  it('delivers appended events and final segments in order and empties the journal', async () => {
    const { target, open } = setup({ batchSize: 4 });
    const outbox = open();
    for (let seq = 1; seq <= 10; seq++) {
      outbox.appendEvents([makeEvent('call-a', seq)]);
      outbox.appendSegments([makeSegment('call-a', seq), makeSegment('call-a', 100 + seq, { final: false })]);
    }
    expect(outbox.stats().backlog).toBe(20);
    await outbox.flush();
    expect(outbox.stats()).toMatchObject({ backlog: 0, delivered: 20, failures: 0, oldestEntryAgeMs: null, deadLetters: 0 });
    expect((await target.store.listEvents('call-a')).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect((await target.store.listSegments('call-a')).map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Journal order is delivery order, across batch boundaries.
    const eventAttempts = target.attempts.filter((id) => id.includes('-e'));
    expect(eventAttempts).toEqual(Array.from({ length: 10 }, (_, i) => `call-a-e${i + 1}`));
  });

  it('keeps accepting appends while the store is down and drains the backlog once it is back', async () => {
    const { target, open } = setup({ batchSize: 3 });
    const outbox = open();
    target.down = true;
    for (let seq = 1; seq <= 12; seq++) outbox.appendEvents([makeEvent('call-b', seq)]);
    await expect.poll(() => outbox.stats().consecutiveFailures, { timeout: 5000 }).toBeGreaterThan(1);
    const during = outbox.stats();
    expect(during.backlog).toBe(12);
    expect(during.lastError?.code).toBe('VE_STORE_UNAVAILABLE');
    expect(during.oldestEntryAgeMs).toBeGreaterThanOrEqual(0);
    // Still accepted, synchronously, mid-outage.
    outbox.appendSegments([makeSegment('call-b', 1)]);
    expect(outbox.stats().backlog).toBe(13);

    target.down = false;
    await outbox.flush();
    expect(outbox.stats()).toMatchObject({ backlog: 0, consecutiveFailures: 0, delivered: 13 });
    expect((await target.store.listEvents('call-b')).map((e) => e.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('keeps per-turn latencies through an outage and stores each once', async () => {
    const { target, open } = setup();
    const outbox = open();
    const { call } = await target.store.createCall({ callId: 'call-l', roomName: 'room-l' });
    target.down = true;
    outbox.appendLatencies([1, 2].map((turn) => ({ callId: call.callId, latency: { turnId: String(turn), at: new Date().toISOString(), responseMs: 500 + turn } })));
    await expect.poll(() => outbox.stats().consecutiveFailures, { timeout: 5000 }).toBeGreaterThan(1);
    expect(outbox.stats().backlog).toBe(2);
    target.down = false;
    target.loseAcks = 1;
    await outbox.flush();
    const stored = await target.store.getCall(call.callId);
    expect(stored?.latencies.map((l) => [l.turnId, l.responseMs])).toEqual([
      ['1', 501],
      ['2', 502],
    ]);
  });

  it('redelivers when the acknowledgement is lost, without duplicates in the store', async () => {
    const { target, open } = setup();
    const outbox = open();
    target.loseAcks = 2;
    outbox.appendEvents([makeEvent('call-c', 1), makeEvent('call-c', 2)]);
    await outbox.flush();
    expect(target.attempts.filter((id) => id === 'call-c-e1')).toHaveLength(3);
    expect((await target.store.listEvents('call-c')).map((e) => e.eventId)).toEqual(['call-c-e1', 'call-c-e2']);
    expect(outbox.stats()).toMatchObject({ backlog: 0, failures: 2 });
  });

  it('replays the journal of a previous instance after a restart', async () => {
    const { target, open } = setup();
    target.down = true;
    const first = open();
    first.appendEvents([makeEvent('call-d', 1), makeEvent('call-d', 2)]);
    first.appendSegments([makeSegment('call-d', 1)]);
    await first.close();
    expect(await target.store.listEvents('call-d')).toEqual([]);

    target.down = false;
    const second = open();
    expect(second.stats().backlog).toBe(3);
    await second.flush();
    expect((await target.store.listEvents('call-d')).map((e) => e.seq)).toEqual([1, 2]);
    expect(await target.store.listSegments('call-d')).toEqual([makeSegment('call-d', 1)]);
    expect(second.stats().backlog).toBe(0);
  });

  it('moves an entry the store rejects as invalid to dead letters and delivers the rest', async () => {
    const { target, open } = setup();
    target.poison.add('call-e-e2');
    const outbox = open();
    outbox.appendEvents([1, 2, 3].map((seq) => makeEvent('call-e', seq)));
    await outbox.flush();
    expect((await target.store.listEvents('call-e')).map((e) => e.seq)).toEqual([1, 3]);
    expect(outbox.stats()).toMatchObject({ backlog: 0, deadLetters: 1, delivered: 2 });
    expect(outbox.stats().lastError?.code).toBe('VE_STORE_INVALID_INPUT');
    expect(outbox.stats().consecutiveFailures).toBe(0);
  });

  it('keeps delivering in the background after a dead letter ended a batch', async () => {
    const { target, open } = setup();
    target.poison.add('call-g-e1');
    const outbox = open();
    outbox.appendEvents([makeEvent('call-g', 1)]);
    await outbox.flush();
    // No flush() here: the append alone must get the entry delivered.
    outbox.appendEvents([makeEvent('call-g', 2)]);
    await expect.poll(() => outbox.stats().delivered, { timeout: 5000 }).toBe(1);
    expect((await target.store.listEvents('call-g')).map((e) => e.seq)).toEqual([2]);
  });

  it('rejects invalid input at append time and refuses work after close', async () => {
    const { target, open } = setup();
    target.down = true;
    const outbox = open();
    expect(() => outbox.appendEvents([{ ...makeEvent('x', 1), eventId: '' }])).toThrow(expect.objectContaining({ code: 'VE_STORE_INVALID_INPUT' }));
    outbox.appendEvents([makeEvent('x', 1)]);
    const pending = outbox.flush();
    await outbox.close();
    await expect(pending).rejects.toMatchObject({ code: 'VE_CLOSED' });
    await outbox.close();
    expect(() => outbox.appendEvents([makeEvent('x', 2)])).toThrow(expect.objectContaining({ code: 'VE_CLOSED' }));
    await expect(outbox.flush()).rejects.toMatchObject({ code: 'VE_CLOSED' });
  });

  it('ignores a throwing onError listener', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const target = new SwitchableTarget(join(dir, 'store'));
    let calls = 0;
    const outbox = Outbox.open({
      dataDir: join(dir, 'journal'),
      store: target,
      minBackoffMs: 5,
      maxBackoffMs: 10,
      onError: () => {
        calls++;
        throw new Error('listener bug');
      },
    });
    cleanups.push(async () => {
      await outbox.close();
      await target.store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    target.loseAcks = 1;
    outbox.appendEvents([makeEvent('call-f', 1)]);
    await outbox.flush();
    expect(calls).toBe(1);
    expect(outbox.stats().backlog).toBe(0);
  });
});
