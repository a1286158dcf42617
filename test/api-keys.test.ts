/**
 * API keys with scopes, across several keys on one app against a real LiveKit server on loopback: a
 * `calls` key sees and acts on only the calls it created (another key's call answers exactly like a call
 * that does not exist), a `read` key only reads, `admin` sees every call, `read+admin` reads every call
 * and changes nothing.
 */
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import {
  ADMIN_API_KEY,
  MONITOR_API_KEY,
  OTHER_API_KEY,
  READ_API_KEY,
  TEST_API_KEY,
  startHarness,
  type Harness,
} from '../server/testing/harness.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
let rooms: RoomServiceClient;
const engine = new FakeEngine({ maxCalls: 1000 });

beforeAll(async () => {
  livekit = await startLiveKitServer();
  h = await startHarness({ livekit, engine });
  rooms = new RoomServiceClient(livekit.httpUrl, livekit.apiKey, livekit.apiSecret);
});

afterAll(async () => {
  await h?.close();
  await livekit?.stop();
});

async function createCall(key: string, json: unknown = {}): Promise<{ callId: string; roomName: string }> {
  const res = await h.api('/v1/calls', { method: 'POST', json, key });
  expect(res.status).toBe(201);
  return (await res.json()) as { callId: string; roomName: string };
}

async function listAll(key: string, query = ''): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const res = await h.api(`/v1/calls?limit=2${query}${cursor ? `&cursor=${cursor}` : ''}`, { key });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { calls: { callId: string }[]; nextCursor?: string };
    // Filtered in the store, not after: a page is short only when it is the last.
    if (page.nextCursor !== undefined) expect(page.calls).toHaveLength(2);
    ids.push(...page.calls.map((c) => c.callId));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return ids;
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, ...body.error };
}

/** Every route that takes a call id, as a key other than the owner would try it. */
function callRoutes(callId: string): { method: string; path: string; json?: unknown }[] {
  return [
    { method: 'GET', path: `/v1/calls/${callId}` },
    { method: 'GET', path: `/v1/calls/${callId}/events` },
    { method: 'POST', path: `/v1/calls/${callId}/end` },
    { method: 'POST', path: `/v1/calls/${callId}/handoff`, json: { botMode: 'transcriber' } },
    { method: 'POST', path: `/v1/calls/${callId}/say`, json: { text: 'hello' } },
    { method: 'POST', path: `/v1/calls/${callId}/recording/start` },
    { method: 'POST', path: `/v1/calls/${callId}/recording/stop` },
    { method: 'POST', path: `/v1/calls/${callId}/egress`, json: { action: 'start' } },
    { method: 'POST', path: '/v1/tokens', json: { callId, role: 'observer' } },
  ];
}

function connectWs(callId: string, key: string): Promise<{ code: number; reason: string } | 'open'> {
  const Ctor = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
  const ws = new Ctor(`${h.baseUrl.replace('http', 'ws')}/v1/calls/${callId}/events/ws`, { headers: { authorization: `Bearer ${key}` } });
  return new Promise((resolve) => {
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = () => {
      resolve('open');
      ws.close();
    };
    ws.onclose = (event) => resolve(opened ? { code: event.code, reason: event.reason } : { code: 0, reason: 'refused' });
  });
}

describe('a key with the calls scope', () => {
  it("cannot see, end, stream, hand off, record or mint tokens for another key's call: 404 as if it did not exist", async () => {
    const mine = await createCall(TEST_API_KEY, { metadata: { owner: 'tester' } });
    const unknownId = '00000000-0000-0000-0000-000000000000';
    const missingRoutes = callRoutes(unknownId);
    for (const [i, route] of callRoutes(mine.callId).entries()) {
      const foreign = await errorOf(await h.api(route.path, { method: route.method, json: route.json, key: OTHER_API_KEY }));
      const missing = missingRoutes[i];
      const absent = await errorOf(await h.api(missing.path, { method: missing.method, json: missing.json, key: OTHER_API_KEY }));
      expect(foreign, `${route.method} ${route.path}`).toEqual({ status: 404, code: 'VE_CALL_NOT_FOUND', message: `call ${mine.callId} not found` });
      expect(absent, `${missing.method} ${missing.path}`).toEqual({ status: 404, code: 'VE_CALL_NOT_FOUND', message: `call ${unknownId} not found` });
    }
    expect(await connectWs(mine.callId, OTHER_API_KEY)).toEqual({ code: 4404, reason: 'VE_CALL_NOT_FOUND' });

    // Nothing happened to the call: the room is there, the bot runs, no recording, still `created`.
    expect((await rooms.listRooms([mine.roomName])).map((r) => r.name)).toEqual([mine.roomName]);
    expect(engine.calls.has(mine.callId)).toBe(true);
    expect(engine.log.filter((line) => line.includes(mine.callId))).toEqual([`startBot ${mine.callId}`]);
    const own = await h.api(`/v1/calls/${mine.callId}`);
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ state: 'created', botMode: 'active' });
    const events = await h.api(`/v1/calls/${mine.callId}/events`);
    expect(events.status).toBe(200);
    await events.body?.cancel();
    expect(await connectWs(mine.callId, TEST_API_KEY)).toBe('open');
  });

  it('lists only its own calls, in full pages, with the state filter', async () => {
    const tester: string[] = [];
    const other: string[] = [];
    // Interleaved, so that filtering a fetched page would leave holes.
    for (let i = 0; i < 5; i++) {
      tester.push((await createCall(TEST_API_KEY)).callId);
      other.push((await createCall(OTHER_API_KEY)).callId);
    }
    const testerSees = await listAll(TEST_API_KEY);
    const otherSees = await listAll(OTHER_API_KEY);
    expect(testerSees.filter((id) => other.includes(id))).toEqual([]);
    expect(otherSees.filter((id) => tester.includes(id))).toEqual([]);
    expect(testerSees.slice(0, 5)).toEqual([...tester].reverse());
    expect(otherSees.slice(0, 5)).toEqual([...other].reverse());

    await h.api(`/v1/calls/${other[0]}/end`, { method: 'POST', key: OTHER_API_KEY });
    expect(await listAll(OTHER_API_KEY, '&state=ended')).toEqual([other[0]]);
    expect(await listAll(TEST_API_KEY, '&state=ended')).toEqual([]);
  });

  it('ends and mints tokens for its own call', async () => {
    const call = await createCall(OTHER_API_KEY);
    const token = await h.api('/v1/tokens', { method: 'POST', json: { callId: call.callId, role: 'observer' }, key: OTHER_API_KEY });
    expect(token.status).toBe(200);
    const end = await h.api(`/v1/calls/${call.callId}/end`, { method: 'POST', key: OTHER_API_KEY });
    expect(end.status).toBe(200);
    expect(engine.calls.has(call.callId)).toBe(false);
  });
});

describe('a key with the read scope', () => {
  it('gets 403 VE_FORBIDDEN on every method but GET, whatever the call, and reads nothing it did not create', async () => {
    const call = await createCall(TEST_API_KEY);
    const create = await h.api('/v1/calls', { method: 'POST', json: {}, key: READ_API_KEY });
    expect(await errorOf(create)).toMatchObject({ status: 403, code: 'VE_FORBIDDEN' });
    for (const route of callRoutes(call.callId).filter((r) => r.method === 'POST')) {
      const res = await h.api(route.path, { method: route.method, json: route.json, key: READ_API_KEY });
      expect(await errorOf(res), `${route.method} ${route.path}`).toMatchObject({ status: 403, code: 'VE_FORBIDDEN' });
    }
    expect(engine.log.filter((line) => line.includes(call.callId))).toEqual([`startBot ${call.callId}`]);
    expect(await errorOf(await h.api(`/v1/calls/${call.callId}`, { key: READ_API_KEY }))).toMatchObject({ status: 404, code: 'VE_CALL_NOT_FOUND' });
    expect(await listAll(READ_API_KEY)).toEqual([]);
  });
});

describe('admin keys', () => {
  it('admin sees and acts on every key\'s calls', async () => {
    const a = await createCall(TEST_API_KEY);
    const b = await createCall(OTHER_API_KEY);
    const all = await listAll(ADMIN_API_KEY);
    expect(all).toEqual(expect.arrayContaining([a.callId, b.callId]));
    expect(all.indexOf(b.callId)).toBeLessThan(all.indexOf(a.callId));
    for (const id of [a.callId, b.callId]) expect((await h.api(`/v1/calls/${id}`, { key: ADMIN_API_KEY })).status).toBe(200);
    expect(await connectWs(b.callId, ADMIN_API_KEY)).toBe('open');
    const end = await h.api(`/v1/calls/${b.callId}/end`, { method: 'POST', key: ADMIN_API_KEY });
    expect(end.status).toBe(200);
    expect(engine.calls.has(b.callId)).toBe(false);
    // A call an admin creates is the admin's: the other keys do not see it.
    const own = await createCall(ADMIN_API_KEY);
    expect((await h.api(`/v1/calls/${own.callId}`)).status).toBe(404);
  });

  it('read+admin reads every call and its events but changes nothing', async () => {
    const a = await createCall(TEST_API_KEY);
    const b = await createCall(OTHER_API_KEY);
    expect(await listAll(MONITOR_API_KEY)).toEqual(expect.arrayContaining([a.callId, b.callId]));
    for (const id of [a.callId, b.callId]) {
      expect((await h.api(`/v1/calls/${id}`, { key: MONITOR_API_KEY })).status).toBe(200);
      const events = await h.api(`/v1/calls/${id}/events`, { key: MONITOR_API_KEY });
      expect(events.status).toBe(200);
      await events.body?.cancel();
    }
    for (const route of callRoutes(a.callId).filter((r) => r.method === 'POST')) {
      const res = await h.api(route.path, { method: route.method, json: route.json, key: MONITOR_API_KEY });
      expect(await errorOf(res), `${route.method} ${route.path}`).toMatchObject({ status: 403, code: 'VE_FORBIDDEN' });
    }
    expect(engine.calls.has(a.callId)).toBe(true);
  });
});
