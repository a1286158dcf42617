/**
 * MongoCallStore against FerretDB (always, started here) and against a real MongoDB when
 * `MONGODB_URI` is set; then the outbox through a real database outage and a process restart.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoUriForTests, startFerretDb, type FerretDbHandle } from '../../test/support/ferretdb.ts';
import type { AppendResult, CallEvent, CallRecord, TranscriptSegment, TurnLatency } from './call-store.ts';
import { describeCallStoreContract, makeEvent, makeSegment, type StoreFactory } from './call-store.contract.ts';
import { MongoCallStore } from './mongo-store.ts';
import { Outbox, type OutboxTarget } from './outbox.ts';
import { startOutageProxy, type OutageProxy } from './testing/outage-proxy.ts';

function uniqueDbName(): string {
  return `vt_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

/** A fresh database per store; dropped afterwards so a shared real MongoDB stays clean. */
function factoryFor(uri: () => string): StoreFactory {
  return async () => {
    const dbName = uniqueDbName();
    const store = await MongoCallStore.open({ uri: uri(), dbName });
    return {
      store,
      cleanup: async () => {
        const admin = new MongoCallStore({ uri: uri(), dbName });
        try {
          await admin.db.dropDatabase();
        } finally {
          await admin.close();
        }
      },
    };
  };
}

let ferret: FerretDbHandle;
beforeAll(async () => {
  ferret = await startFerretDb();
});
afterAll(async () => {
  await ferret?.stop();
});

describeCallStoreContract('mongodb (FerretDB v1)', factoryFor(() => ferret.uri));

if (process.env.MONGODB_URI) {
  let external = '';
  beforeAll(async () => {
    external = (await mongoUriForTests()).uri;
  });
  describeCallStoreContract('mongodb (MONGODB_URI)', factoryFor(() => external));
}

describe('MongoCallStore availability', () => {
  it('opens again over an existing database (indexes already there), as after an engine restart', async () => {
    const dbName = uniqueDbName();
    const first = await MongoCallStore.open({ uri: ferret.uri, dbName });
    await first.createCall({ callId: 'kept', roomName: 'r' });
    await first.close();
    const second = await MongoCallStore.open({ uri: ferret.uri, dbName });
    try {
      expect((await second.getCall('kept'))?.roomName).toBe('r');
      await second.db.dropDatabase();
    } finally {
      await second.close();
    }
  });

  it('fails fast and retryably when the database is unreachable, and recovers without a new client', async () => {
    const proxy = await startOutageProxy(Number(new URL(ferret.uri).port));
    const store = new MongoCallStore({ uri: `mongodb://127.0.0.1:${proxy.port}/`, dbName: uniqueDbName(), serverSelectionTimeoutMs: 300 });
    try {
      proxy.cut();
      await expect(store.ping()).rejects.toMatchObject({ code: 'VE_STORE_UNAVAILABLE', retryable: true, status: 503 });
      await expect(store.createCall({ roomName: 'r' })).rejects.toMatchObject({ code: 'VE_STORE_UNAVAILABLE' });
      proxy.restore();
      await expect.poll(async () => store.ping().then(() => 'up', (err: { code?: string }) => err.code), { timeout: 10_000, interval: 100 }).toBe('up');
      const { created } = await store.createCall({ roomName: 'r' });
      expect(created).toBe(true);
      await store.db.dropDatabase();
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});

/** Passes writes through and records, in order, the ids the store acknowledged. */
class RecordingTarget implements OutboxTarget {
  store: MongoCallStore;
  acknowledged: string[] = [];

  constructor(store: MongoCallStore) {
    this.store = store;
  }

  async appendEvents(events: CallEvent[]): Promise<AppendResult> {
    const result = await this.store.appendEvents(events);
    this.acknowledged.push(...events.map((e) => `e${e.seq}`));
    return result;
  }

  async appendSegments(segments: TranscriptSegment[]): Promise<AppendResult> {
    const result = await this.store.appendSegments(segments);
    this.acknowledged.push(...segments.map((s) => `s${s.seq}`));
    return result;
  }

  async appendLatency(callId: string, latency: TurnLatency): Promise<CallRecord> {
    const result = await this.store.appendLatency(callId, latency);
    this.acknowledged.push(`l${latency.turnId}`);
    return result;
  }
}

/** First acknowledgement of each id, in order: redeliveries after a lost ack do not reorder anything. */
function firstAcks(acks: string[], prefix: string): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  for (const id of acks) {
    if (!id.startsWith(prefix) || seen.has(id)) continue;
    seen.add(id);
    out.push(Number(id.slice(prefix.length)));
  }
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Outbox over MongoDB through an outage', () => {
  let proxy: OutageProxy;
  let journalDir: string;
  const dbName = uniqueDbName();
  const callId = 'outage-call';

  beforeAll(async () => {
    proxy = await startOutageProxy(Number(new URL(ferret.uri).port));
    journalDir = mkdtempSync(join(tmpdir(), 'outbox-mongo-'));
  });
  afterAll(async () => {
    await proxy?.close();
    rmSync(journalDir, { recursive: true, force: true });
  });

  const openStore = () => new MongoCallStore({ uri: `mongodb://127.0.0.1:${proxy.port}/`, dbName, serverSelectionTimeoutMs: 300 });
  const openOutbox = (target: OutboxTarget) => Outbox.open({ dataDir: journalDir, store: target, batchSize: 7, minBackoffMs: 20, maxBackoffMs: 200 });
  const append = (outbox: Outbox, from: number, to: number) => {
    for (const seq of range(from, to)) {
      // Returns synchronously whatever the database is doing: the call's media path never waits on it.
      expect(outbox.appendEvents([makeEvent(callId, seq)])).toBeUndefined();
      expect(outbox.appendSegments([makeSegment(callId, seq)])).toBeUndefined();
    }
  };

  it('keeps appending while FerretDB is down and restarted, then delivers everything once, in order', async () => {
    const store = openStore();
    await store.ready();
    const target = new RecordingTarget(store);
    const outbox = openOutbox(target);
    try {
      append(outbox, 1, 10);
      await outbox.flush();
      // Entries 11-15 may be mid-delivery when the database goes away.
      append(outbox, 11, 15);
      proxy.cut();
      await ferret.restart();
      append(outbox, 16, 30);
      await expect.poll(() => outbox.stats().consecutiveFailures, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      const during = outbox.stats();
      expect(during.lastError?.code).toBe('VE_STORE_UNAVAILABLE');
      expect(during.backlog).toBeGreaterThanOrEqual(30);

      proxy.restore();
      await outbox.flush();
      expect(outbox.stats()).toMatchObject({ backlog: 0, consecutiveFailures: 0, deadLetters: 0 });

      expect((await store.listEvents(callId, { limit: 500 })).map((e) => e.seq)).toEqual(range(1, 30));
      expect((await store.listSegments(callId)).map((s) => s.seq)).toEqual(range(1, 30));
      // No duplicate documents behind the listing either.
      expect(await store.db.collection('events').countDocuments({ callId })).toBe(30);
      expect(await store.db.collection('segments').countDocuments({ callId })).toBe(30);
      expect(firstAcks(target.acknowledged, 'e')).toEqual(range(1, 30));
      expect(firstAcks(target.acknowledged, 's')).toEqual(range(1, 30));
    } finally {
      await outbox.close();
      await store.close();
    }
  });

  it('replays the journal in a new process (new outbox and store over the same journal)', async () => {
    const first = openStore();
    const firstOutbox = openOutbox(new RecordingTarget(first));
    proxy.cut();
    append(firstOutbox, 31, 40);
    expect(firstOutbox.stats().backlog).toBe(20);
    // The "process" goes away with its backlog undelivered.
    await firstOutbox.close();
    await first.close();

    proxy.restore();
    const second = openStore();
    const target = new RecordingTarget(second);
    const secondOutbox = openOutbox(target);
    try {
      expect(secondOutbox.stats().backlog).toBe(20);
      await secondOutbox.flush();
      expect(secondOutbox.stats().backlog).toBe(0);
      expect((await second.listEvents(callId, { limit: 500 })).map((e) => e.seq)).toEqual(range(1, 40));
      expect((await second.listSegments(callId)).map((s) => s.seq)).toEqual(range(1, 40));
      expect(await second.db.collection('events').countDocuments({ callId })).toBe(40);
      expect(firstAcks(target.acknowledged, 'e')).toEqual(range(31, 40));
      await second.db.dropDatabase();
    } finally {
      await secondOutbox.close();
      await second.close();
    }
  });
});
