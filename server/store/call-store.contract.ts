/**
 * The one behavioural test suite every CallStore must pass. Each backend's `*.test.ts` calls
 * `describeCallStoreContract` with a factory that returns a fresh, empty store.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LATENCIES_PER_CALL, type CallEvent, type CallStore, type TranscriptSegment } from './call-store.ts';

export interface StoreHandle {
  store: CallStore;
  /** Drops whatever the factory created (database, directory). Called after `store.close()`. */
  cleanup?: () => Promise<void>;
}

export type StoreFactory = () => Promise<StoreHandle>;

export function makeEvent(callId: string, seq: number, extra: Partial<CallEvent> = {}): CallEvent {
  return { callId, eventId: `${callId}-e${seq}`, seq, type: 'vad', at: new Date(1_700_000_000_000 + seq).toISOString(), data: { event: 'speech_start', offsetMs: seq }, ...extra } as CallEvent;
}

export function makeSegment(callId: string, seq: number, extra: Partial<TranscriptSegment> = {}): TranscriptSegment {
  return {
    callId,
    segmentId: `s${seq}`,
    seq,
    speaker: seq % 2 === 0 ? 'caller' : 'bot',
    text: `segment ${seq}`,
    startMs: seq * 1000,
    endMs: seq * 1000 + 900,
    final: true,
    ...extra,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return 'resolved';
}

export function describeCallStoreContract(name: string, factory: StoreFactory): void {
  describe(`CallStore contract: ${name}`, () => {
    const handles: StoreHandle[] = [];
    async function open(): Promise<CallStore> {
      const handle = await factory();
      handles.push(handle);
      return handle.store;
    }
    afterEach(async () => {
      for (const h of handles.splice(0)) {
        await h.store.close();
        await h.cleanup?.();
      }
    });

    it('creates a call with defaults and reads it back', async () => {
      const store = await open();
      const { call, created } = await store.createCall({ roomName: 'room-1', metadata: { from: '+15550100' } });
      expect(created).toBe(true);
      expect(call.callId).toMatch(/^[0-9a-f-]{36}$/);
      expect(call).toMatchObject({ roomName: 'room-1', state: 'created', botMode: 'active', participants: [], latencies: [], rev: 1 });
      expect(new Date(call.createdAt).toISOString()).toBe(call.createdAt);
      expect(await store.getCall(call.callId)).toEqual(call);
      expect(await store.getCall('no-such-call')).toBeNull();
    });

    it('normalises dates to ISO UTC and rejects invalid input with a typed error', async () => {
      const store = await open();
      const { call } = await store.createCall({ callId: 'c-dates', roomName: 'r', createdAt: '2024-03-01T10:00:00+02:00' });
      expect(call.createdAt).toBe('2024-03-01T08:00:00.000Z');
      expect(await codeOf(store.createCall({ roomName: '' }))).toBe('VE_STORE_INVALID_INPUT');
      expect(await codeOf(store.createCall({ roomName: 'r', createdAt: 'yesterday-ish' }))).toBe('VE_STORE_INVALID_INPUT');
      expect(await codeOf(store.createCall({ roomName: 'r', state: 'bogus' as never }))).toBe('VE_STORE_INVALID_INPUT');
    });

    it('returns the existing call for a repeated idempotency key, even under concurrency', async () => {
      const store = await open();
      const first = await store.createCall({ roomName: 'r-a' }, { idempotencyKey: 'key-1' });
      const again = await store.createCall({ roomName: 'r-a' }, { idempotencyKey: 'key-1' });
      expect(first.created).toBe(true);
      expect(again.created).toBe(false);
      expect(again.call).toEqual(first.call);
      expect(first.call.idempotencyKey).toBe('key-1');

      const racing = await Promise.all(Array.from({ length: 5 }, () => store.createCall({ roomName: 'r-b' }, { idempotencyKey: 'key-2' })));
      expect(racing.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(racing.map((r) => r.call.callId)).size).toBe(1);
      expect(racing[0].call.callId).not.toBe(first.call.callId);
      expect((await store.listCalls({ limit: 10 })).calls).toHaveLength(2);
    });

    it('finds a call by its idempotency key, and a released key creates a new call', async () => {
      const store = await open();
      expect(await store.findCallByIdempotencyKey('key-r')).toBeNull();
      const first = await store.createCall({ roomName: 'r-1' }, { idempotencyKey: 'key-r' });
      expect(await store.findCallByIdempotencyKey('key-r')).toEqual(first.call);
      // Only the owner of the key can release it.
      expect(await store.releaseIdempotencyKey('key-r', 'some-other-call')).toBe(false);
      expect(await store.findCallByIdempotencyKey('key-r')).toEqual(first.call);
      expect(await store.releaseIdempotencyKey('key-r', first.call.callId)).toBe(true);
      expect(await store.releaseIdempotencyKey('key-r', first.call.callId)).toBe(false);
      expect(await store.findCallByIdempotencyKey('key-r')).toBeNull();
      const second = await store.createCall({ roomName: 'r-2' }, { idempotencyKey: 'key-r' });
      expect(second.created).toBe(true);
      expect(second.call.callId).not.toBe(first.call.callId);
      expect(await store.findCallByIdempotencyKey('key-r')).toEqual(second.call);
      // The released call keeps its record.
      expect((await store.getCall(first.call.callId))?.roomName).toBe('r-1');
    });

    it('rejects a duplicate callId without a key', async () => {
      const store = await open();
      await store.createCall({ callId: 'dup', roomName: 'r' });
      expect(await codeOf(store.createCall({ callId: 'dup', roomName: 'other' }))).toBe('VE_CALL_EXISTS');
      expect((await store.getCall('dup'))?.roomName).toBe('r');
    });

    it('lists calls newest first with a cursor that visits each call exactly once, filtered by state', async () => {
      const store = await open();
      const base = Date.parse('2024-05-01T00:00:00.000Z');
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        // Two calls share a createdAt so the callId tie-break is exercised.
        const createdAt = new Date(base + Math.min(i, 5) * 60_000).toISOString();
        const { call } = await store.createCall({ callId: `call-${i}`, roomName: `room-${i}`, createdAt, state: i % 3 === 0 ? 'ended' : 'active' });
        ids.push(call.callId);
      }
      const seen: string[] = [];
      let before: string | undefined;
      let pages = 0;
      do {
        const page = await store.listCalls({ limit: 3, before });
        expect(page.calls.length).toBeLessThanOrEqual(3);
        seen.push(...page.calls.map((c) => c.callId));
        before = page.nextCursor;
        pages++;
      } while (before !== undefined && pages < 10);
      expect(seen).toEqual(['call-6', 'call-5', 'call-4', 'call-3', 'call-2', 'call-1', 'call-0']);

      const ended = await store.listCalls({ state: 'ended', limit: 2 });
      expect(ended.calls.map((c) => c.callId)).toEqual(['call-6', 'call-3']);
      const rest = await store.listCalls({ state: 'ended', limit: 2, before: ended.nextCursor });
      expect(rest.calls.map((c) => c.callId)).toEqual(['call-0']);
      expect(rest.nextCursor).toBeUndefined();
      expect(await codeOf(store.listCalls({ before: 'not-a-cursor' }))).toBe('VE_STORE_INVALID_INPUT');
      expect(await codeOf(store.listCalls({ limit: 0 }))).toBe('VE_STORE_INVALID_INPUT');
    });

    it('lists one owner\'s calls in full pages, with the state filter and cursor, and keeps the owner', async () => {
      const store = await open();
      const base = Date.parse('2024-06-01T00:00:00.000Z');
      // Owners interleaved, so a page filtered after fetching would come back short.
      for (let i = 0; i < 12; i++) {
        const owner = i % 3 === 0 ? 'alice' : i % 3 === 1 ? 'bob' : undefined;
        await store.createCall({ callId: `o-${String(i).padStart(2, '0')}`, roomName: `r-${i}`, createdAt: new Date(base + i * 1000).toISOString(), owner, state: i % 2 === 0 ? 'ended' : 'active' });
      }
      expect((await store.getCall('o-00'))?.owner).toBe('alice');
      expect((await store.getCall('o-02'))?.owner).toBeUndefined();

      const pages: string[][] = [];
      let before: string | undefined;
      do {
        const page = await store.listCalls({ owner: 'alice', limit: 2, before });
        pages.push(page.calls.map((c) => c.callId));
        before = page.nextCursor;
      } while (before !== undefined && pages.length < 10);
      expect(pages).toEqual([['o-09', 'o-06'], ['o-03', 'o-00']]);

      const endedBob = await store.listCalls({ owner: 'bob', state: 'ended', limit: 1 });
      expect(endedBob.calls.map((c) => c.callId)).toEqual(['o-10']);
      const more = await store.listCalls({ owner: 'bob', state: 'ended', limit: 1, before: endedBob.nextCursor });
      expect(more.calls.map((c) => c.callId)).toEqual(['o-04']);
      expect(more.nextCursor).toBeUndefined();
      expect((await store.listCalls({ owner: 'nobody' })).calls).toEqual([]);
      // Other changes keep the owner.
      expect((await store.updateCall('o-00', { state: 'human' })).owner).toBe('alice');
    });

    it('updates a call: fields, shallow metadata merge with null delete, recording merge, rev and updatedAt', async () => {
      const store = await open();
      const { call } = await store.createCall({ callId: 'u1', roomName: 'r', metadata: { a: 1, b: 2 } });
      const active = await store.updateCall('u1', { state: 'active', metadata: { b: null, c: 'x' }, recording: { status: 'starting', egressId: 'EG_1' } });
      expect(active).toMatchObject({ state: 'active', metadata: { a: 1, c: 'x' }, recording: { status: 'starting', egressId: 'EG_1' }, rev: call.rev + 1 });
      expect(active.metadata).not.toHaveProperty('b');
      expect(active.updatedAt >= call.updatedAt).toBe(true);
      const ended = await store.updateCall('u1', {
        state: 'ended',
        botMode: 'removed',
        endedAt: '2024-05-01T00:10:00Z',
        endReason: 'caller_hangup',
        recording: { status: 'ended', location: 'file:///rec/u1.ogg' },
      });
      expect(ended).toMatchObject({
        state: 'ended',
        botMode: 'removed',
        endedAt: '2024-05-01T00:10:00.000Z',
        endReason: 'caller_hangup',
        recording: { status: 'ended', egressId: 'EG_1', location: 'file:///rec/u1.ogg' },
        rev: call.rev + 2,
      });
      expect(await store.getCall('u1')).toEqual(ended);
      expect(await codeOf(store.updateCall('missing', { state: 'active' }))).toBe('VE_CALL_NOT_FOUND');
    });

    it('guards updates with ifState and leaves the call unchanged on conflict', async () => {
      const store = await open();
      await store.createCall({ callId: 'g1', roomName: 'r', state: 'active' });
      const human = await store.updateCall('g1', { state: 'human', botMode: 'transcriber' }, { ifState: ['active'] });
      expect(human.state).toBe('human');
      expect(await codeOf(store.updateCall('g1', { state: 'active' }, { ifState: ['active', 'created'] }))).toBe('VE_CALL_STATE_CONFLICT');
      expect(await store.getCall('g1')).toEqual(human);

      // Exactly one of several racing "end" requests wins.
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, (_, i) => store.updateCall('g1', { state: 'ended', endReason: `r${i}` }, { ifState: ['created', 'active', 'human'] })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('VE_CALL_STATE_CONFLICT');
    });

    it('adds and removes participants idempotently, and a rejoin appends a new entry', async () => {
      const store = await open();
      await store.createCall({ callId: 'p1', roomName: 'r' });
      const joined = await store.addParticipant('p1', { identity: 'alice', role: 'caller', joinedAt: '2024-05-01T00:00:00Z' });
      const replay = await store.addParticipant('p1', { identity: 'alice', role: 'caller', joinedAt: '2024-05-01T00:00:05Z' });
      expect(replay).toEqual(joined);
      expect(joined.participants).toEqual([{ identity: 'alice', role: 'caller', joinedAt: '2024-05-01T00:00:00.000Z' }]);
      const left = await store.markParticipantLeft('p1', 'alice', '2024-05-01T00:01:00Z');
      expect(left.participants[0].leftAt).toBe('2024-05-01T00:01:00.000Z');
      expect(await store.markParticipantLeft('p1', 'alice', '2024-05-01T00:02:00Z')).toEqual(left);
      expect(await store.markParticipantLeft('p1', 'nobody')).toEqual(left);
      const rejoined = await store.addParticipant('p1', { identity: 'alice', role: 'caller', joinedAt: '2024-05-01T00:03:00Z' });
      expect(rejoined.participants.map((p) => [p.identity, p.leftAt])).toEqual([
        ['alice', '2024-05-01T00:01:00.000Z'],
        ['alice', undefined],
      ]);
      expect(await codeOf(store.addParticipant('missing', { identity: 'x', role: 'bot', joinedAt: '2024-05-01T00:00:00Z' }))).toBe('VE_CALL_NOT_FOUND');
    });

    it('keeps every concurrent participant update (no lost writes)', async () => {
      const store = await open();
      await store.createCall({ callId: 'cc', roomName: 'r' });
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.addParticipant('cc', { identity: `user-${i}`, role: 'observer', joinedAt: '2024-05-01T00:00:00Z' })),
      );
      const call = await store.getCall('cc');
      expect(call?.participants.map((p) => p.identity).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `user-${i}`).sort());
      expect(call?.rev).toBe(9);
    });

    it('appends latencies idempotently by turnId and caps their number', async () => {
      const store = await open();
      await store.createCall({ callId: 'l1', roomName: 'r' });
      await store.appendLatency('l1', { turnId: 't1', at: '2024-05-01T00:00:01Z', responseMs: 640, stagesMs: { sttMs: 120 } });
      await store.appendLatency('l1', { turnId: 't2', at: '2024-05-01T00:00:09Z', responseMs: 580 });
      const replay = await store.appendLatency('l1', { turnId: 't1', at: '2024-05-01T00:00:01Z', responseMs: 999 });
      expect(replay.latencies).toEqual([
        { turnId: 't1', at: '2024-05-01T00:00:01.000Z', responseMs: 640, stagesMs: { sttMs: 120 } },
        { turnId: 't2', at: '2024-05-01T00:00:09.000Z', responseMs: 580 },
      ]);
      expect(MAX_LATENCIES_PER_CALL).toBeGreaterThan(2);
    });

    it('stores events once per eventId and lists them by seq', async () => {
      const store = await open();
      const events = [3, 1, 2, 5, 4].map((seq) => makeEvent('ev', seq));
      expect(await store.appendEvents(events.slice(0, 3))).toEqual({ written: 3 });
      // A replay overlapping the first batch writes only the new ones.
      expect(await store.appendEvents(events)).toEqual({ written: 2 });
      expect(await store.appendEvents(events)).toEqual({ written: 0 });
      expect(await store.appendEvents([])).toEqual({ written: 0 });
      await store.appendEvents([makeEvent('other', 1)]);
      const listed = await store.listEvents('ev');
      expect(listed.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(listed[0]).toEqual(makeEvent('ev', 1));
      expect((await store.listEvents('ev', { afterSeq: 2, limit: 2 })).map((e) => e.seq)).toEqual([3, 4]);
      expect(await store.listEvents('nobody')).toEqual([]);
      expect(await codeOf(store.appendEvents([{ ...makeEvent('ev', 9), eventId: '' }]))).toBe('VE_STORE_INVALID_INPUT');
    });

    it('stores final segments once per (callId, segmentId) and skips interim ones', async () => {
      const store = await open();
      const result = await store.appendSegments([makeSegment('sg', 2), makeSegment('sg', 1), makeSegment('sg', 3, { final: false, segmentId: 'interim' })]);
      expect(result).toEqual({ written: 2 });
      expect(await store.appendSegments([makeSegment('sg', 1), makeSegment('sg', 2)])).toEqual({ written: 0 });
      // The same segmentId under another call is a different segment.
      expect(await store.appendSegments([makeSegment('sg2', 1)])).toEqual({ written: 1 });
      const listed = await store.listSegments('sg');
      expect(listed).toEqual([makeSegment('sg', 1), makeSegment('sg', 2)]);
      expect((await store.listSegments('sg', { afterSeq: 1 })).map((s) => s.segmentId)).toEqual(['s2']);
    });

    it('marks a webhook processed exactly once, even when deliveries race', async () => {
      const store = await open();
      expect(await store.markWebhookProcessed('wh-1')).toBe(true);
      expect(await store.markWebhookProcessed('wh-1')).toBe(false);
      const racing = await Promise.all(Array.from({ length: 4 }, () => store.markWebhookProcessed('wh-2')));
      expect(racing.filter(Boolean)).toHaveLength(1);
      expect(await store.isWebhookProcessed('wh-2')).toBe(true);
      expect(await store.isWebhookProcessed('wh-3')).toBe(false);
    });

    it('pings, closes idempotently and then refuses work with VE_CLOSED', async () => {
      const store = await open();
      await store.ping();
      await store.close();
      await store.close();
      expect(await codeOf(store.getCall('x'))).toBe('VE_CLOSED');
      expect(await codeOf(store.appendEvents([makeEvent('x', 1)]))).toBe('VE_CLOSED');
    });

    it('gives each store in the suite its own data (factory isolation)', async () => {
      const a = await open();
      const id = randomUUID();
      await a.createCall({ callId: id, roomName: 'r' });
      const b = await open();
      expect(await b.getCall(id)).toBeNull();
    });
  });
}
