/**
 * End to end against a real LiveKit server on loopback: rooms are really created and deleted, tokens are
 * verified with LiveKit's verifier, calls persist in the embedded store through the real outbox. The
 * engine is the in-test `FakeEngine` (the real one lives in engine/).
 */
import { RoomServiceClient, TokenVerifier } from 'livekit-server-sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VoiceError } from '../engine/errors.ts';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { StoreFaults } from '../server/testing/store-faults.ts';
import { LIMITED_API_KEY, LIMITED_MAX, TEST_API_KEY, TEST_API_KEY_NAME, startHarness, type Harness } from '../server/testing/harness.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
let rooms: RoomServiceClient;
const engine = new FakeEngine({ maxCalls: 1000 });
const faults = new StoreFaults();

beforeAll(async () => {
  livekit = await startLiveKitServer();
  h = await startHarness({ livekit, engine, wrapStore: (store) => faults.wrap(store) });
  rooms = new RoomServiceClient(livekit.httpUrl, livekit.apiKey, livekit.apiSecret);
});

afterAll(async () => {
  await h?.close();
  await livekit?.stop();
});

beforeEach(() => {
  engine.maxCalls = 1000;
  faults.restore();
});

async function roomExists(name: string): Promise<boolean> {
  return (await rooms.listRooms([name])).some((r) => r.name === name);
}

async function createCall(json: unknown = {}, headers: Record<string, string> = {}) {
  const res = await h.api('/v1/calls', { method: 'POST', json, headers });
  return { res, body: (await res.json()) as Record<string, any> };
}

describe('POST /v1/calls', () => {
  it('creates the LiveKit room, mints a caller token, starts the bot and persists the call', async () => {
    const { res, body } = await createCall({ callerIdentity: 'caller-42', instructions: 'Be brief.', metadata: { ticket: 'T-1' } });
    expect(res.status).toBe(201);
    expect(body.livekitUrl).toBe(livekit.url);
    expect(body.roomName).toBe(`call-${body.callId}`);
    expect(await roomExists(body.roomName)).toBe(true);
    expect(engine.calls.get(body.callId)?.req).toEqual({
      callId: body.callId,
      roomName: body.roomName,
      callerIdentity: 'caller-42',
      instructions: 'Be brief.',
    });

    const claims = await new TokenVerifier(livekit.apiKey, livekit.apiSecret).verify(body.callerToken);
    expect(claims.sub).toBe('caller-42');
    expect(claims.video).toMatchObject({ room: body.roomName, roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: false });
    expect(claims.video?.canPublishSources).toEqual(['microphone']);

    const got = await h.api(`/v1/calls/${body.callId}`);
    expect(got.status).toBe(200);
    const call = (await got.json()) as Record<string, any>;
    expect(call).toMatchObject({ callId: body.callId, state: 'created', botMode: 'active', callerIdentity: 'caller-42', metadata: { ticket: 'T-1' } });
    // Bookkeeping kept in metadata stays internal.
    expect(Object.keys(call.metadata)).toEqual(['ticket']);
  });

  it('answers a repeated Idempotency-Key with the same call, and refuses it with another body', async () => {
    const key = `idem-${Date.now()}`;
    const first = await createCall({ metadata: { n: 1, m: 2 } }, { 'idempotency-key': key });
    const again = await createCall({ metadata: { m: 2, n: 1 } }, { 'idempotency-key': key });
    expect(first.res.status).toBe(201);
    expect(again.res.status).toBe(201);
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.callId).toBe(first.body.callId);
    expect(again.body.callerIdentity).toBe(first.body.callerIdentity);
    expect(engine.log.filter((line) => line === `startBot ${first.body.callId}`)).toHaveLength(1);

    const other = await createCall({ metadata: { n: 2 } }, { 'idempotency-key': key });
    expect(other.res.status).toBe(422);
    expect(other.body.error.code).toBe('VE_IDEMPOTENCY_MISMATCH');

    // Keys are scoped per API key.
    const res = await h.api('/v1/calls', {
      method: 'POST',
      json: { metadata: { n: 1, m: 2 } },
      headers: { authorization: `Bearer ${LIMITED_API_KEY}`, 'idempotency-key': key },
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { callId: string }).callId).not.toBe(first.body.callId);
  });

  it('replays the original status and body for a retry of an existing call even while the engine is full', async () => {
    const key = `full-${Date.now()}`;
    const first = await createCall({ callerName: 'Ada', metadata: { ticket: 'T-9' } }, { 'idempotency-key': key });
    expect(first.res.status).toBe(201);
    engine.maxCalls = engine.calls.size;
    const again = await createCall({ callerName: 'Ada', metadata: { ticket: 'T-9' } }, { 'idempotency-key': key });
    expect(again.res.status).toBe(201);
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    // The same answer; only the caller token is minted afresh (same identity, same room).
    const { callerToken: _t1, callerTokenExpiresAt: _e1, ...original } = first.body;
    const { callerToken, callerTokenExpiresAt: _e2, ...replayed } = again.body;
    expect(replayed).toEqual(original);
    const claims = await new TokenVerifier(livekit.apiKey, livekit.apiSecret).verify(callerToken);
    expect(claims.sub).toBe(first.body.callerIdentity);
    expect(claims.video?.room).toBe(first.body.roomName);
    // A new key is still refused: the engine really is full.
    expect((await createCall({}, { 'idempotency-key': `${key}-new` })).res.status).toBe(503);
  });

  it('answers 409 VE_IDEMPOTENCY_IN_FLIGHT to a retry while the first attempt is still running', async () => {
    const key = `inflight-${Date.now()}`;
    const release = engine.pauseNext('startBot');
    const logged = engine.log.length;
    const firstPending = createCall({ metadata: { n: 1 } }, { 'idempotency-key': key });
    // The first request is parked inside startBot (it has created the call and its room).
    await expect.poll(() => engine.log.slice(logged).some((line) => line.startsWith('startBot '))).toBe(true);
    const concurrent = await createCall({ metadata: { n: 1 } }, { 'idempotency-key': key });
    expect(concurrent.res.status).toBe(409);
    expect(concurrent.body.error.code).toBe('VE_IDEMPOTENCY_IN_FLIGHT');
    expect(Number(concurrent.res.headers.get('retry-after'))).toBeGreaterThan(0);
    release();
    const first = await firstPending;
    expect(first.res.status).toBe(201);
    const after = await createCall({ metadata: { n: 1 } }, { 'idempotency-key': key });
    expect(after.res.status).toBe(201);
    expect(after.body.callId).toBe(first.body.callId);
    expect(engine.log.filter((line) => line === `startBot ${first.body.callId}`)).toHaveLength(1);
  });

  it('answers 503 VE_AT_CAPACITY with Retry-After when the engine admits no more calls', async () => {
    engine.maxCalls = engine.calls.size;
    const before = (await rooms.listRooms()).length;
    const { res, body } = await createCall();
    expect(res.status).toBe(503);
    expect(body.error.code).toBe('VE_AT_CAPACITY');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await rooms.listRooms()).length).toBe(before);
  });

  it('deletes the room and ends the call when the bot cannot start; a retry with the same key runs again', async () => {
    engine.failNext('startBot', new Error('worker pool exploded'));
    const key = `fail-${Date.now()}`;
    const { res, body } = await createCall({ metadata: { attempt: 'x' } }, { 'idempotency-key': key });
    expect(res.status).toBe(502);
    expect(body.error.code).toBe('VE_BOT_START_FAILED');
    expect(body.error.message).not.toContain('exploded');
    const { calls } = (await (await h.api('/v1/calls?state=ended&limit=500')).json()) as { calls: Record<string, any>[] };
    const failed = calls.find((c) => c.endReason === 'setup_failed' && c.metadata.attempt === 'x');
    expect(failed).toBeDefined();
    expect(await roomExists(failed!.roomName)).toBe(false);

    // The failed attempt released its key: the retry sets a new call up (no replay of the 502).
    const retry = await createCall({ metadata: { attempt: 'x' } }, { 'idempotency-key': key });
    expect(retry.res.status).toBe(201);
    expect(retry.res.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.body.callId).not.toBe(failed!.callId);
    expect(engine.calls.has(retry.body.callId)).toBe(true);
    expect(await roomExists(retry.body.roomName)).toBe(true);
    // From then on the key replays the call that started.
    const replay = await createCall({ metadata: { attempt: 'x' } }, { 'idempotency-key': key });
    expect(replay.res.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.callId).toBe(retry.body.callId);
    expect(((await (await h.api(`/v1/calls/${failed!.callId}`)).json()) as any).endReason).toBe('setup_failed');
  });

  it('runs a retry again when the failed attempt could not release its key', async () => {
    engine.failNext('startBot', new Error('no media worker'));
    faults.failNext('releaseIdempotencyKey');
    const key = `stuck-${Date.now()}`;
    const first = await createCall({}, { 'idempotency-key': key });
    expect(first.res.status).toBe(502);
    expect(faults.refused.get('releaseIdempotencyKey')).toBe(1);
    const stuck = await h.store.findCallByIdempotencyKey(`${TEST_API_KEY_NAME}:${key}`);
    expect(stuck).toMatchObject({ state: 'ended', endReason: 'setup_failed' });

    const retry = await createCall({}, { 'idempotency-key': key });
    expect(retry.res.status).toBe(201);
    expect(retry.body.callId).not.toBe(stuck!.callId);
    expect((await h.store.findCallByIdempotencyKey(`${TEST_API_KEY_NAME}:${key}`))?.callId).toBe(retry.body.callId);
  });

  it('maps an engine capacity race to 503 VE_AT_CAPACITY', async () => {
    engine.failNext('startBot', new VoiceError('VE_AT_CAPACITY', 'full', { status: 503 }));
    const { res, body } = await createCall();
    expect(res.status).toBe(503);
    expect(body.error.code).toBe('VE_AT_CAPACITY');
  });
});

describe('GET /v1/calls', () => {
  it('filters by state and pages with a cursor, newest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createCall({ metadata: { page: i } })).body.callId);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await h.api(`/v1/calls?state=created&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { calls: { callId: string; state: string }[]; nextCursor?: string };
      expect(page.calls.length).toBeLessThanOrEqual(2);
      expect(page.calls.every((c) => c.state === 'created')).toBe(true);
      seen.push(...page.calls.map((c) => c.callId));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(new Set(seen).size).toBe(seen.length);
    const newest = seen.filter((id) => ids.includes(id));
    expect(newest).toEqual([...ids].reverse());
  });

  it('answers 404 VE_CALL_NOT_FOUND for an unknown id and 400 for a bad cursor', async () => {
    const res = await h.api('/v1/calls/00000000-0000-0000-0000-000000000000');
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe('VE_CALL_NOT_FOUND');
    const bad = await h.api('/v1/calls?cursor=not-a-cursor');
    expect(bad.status).toBe(400);
  });

  it('shows the transcript and latencies the engine reported', async () => {
    const { body } = await createCall();
    engine.emit(body.callId, 'transcript', { segmentId: 's1', speaker: 'caller', text: 'hello', startMs: 0, endMs: 400, final: true });
    engine.emit(body.callId, 'transcript', { segmentId: 's2', speaker: 'bot', text: 'hel', startMs: 500, endMs: 600, final: false });
    engine.emit(body.callId, 'transcript', { segmentId: 's3', speaker: 'bot', text: 'hi there', startMs: 500, endMs: 900, final: true });
    engine.emit(body.callId, 'latency', { turnId: 1, responseMs: 640, stagesMs: { endOfUtterance: 210, sttFinal: null, llmFirstToken: 300, ttsFirstByte: 120 }, smartTurn: { probability: 0.8, rule: 'model' } });
    await h.outbox.flush();
    await expect.poll(async () => ((await (await h.api(`/v1/calls/${body.callId}`)).json()) as any).latencies.length).toBe(1);
    const call = (await (await h.api(`/v1/calls/${body.callId}`)).json()) as Record<string, any>;
    expect(call.transcript.map((s: { speaker: string; text: string }) => `${s.speaker}: ${s.text}`)).toEqual(['caller: hello', 'bot: hi there']);
    // The engine's numeric turn id is the record's string id; a stage that did not happen is absent.
    expect(call.latencies[0]).toEqual({
      turnId: '1',
      at: expect.any(String),
      responseMs: 640,
      stagesMs: { endOfUtterance: 210, llmFirstToken: 300, ttsFirstByte: 120 },
      smartTurn: { rule: 'model', probability: 0.8 },
    });
  });
});

describe('POST /v1/calls/:id/end', () => {
  it('stops the bot, deletes the room, and is idempotent', async () => {
    const { body } = await createCall();
    expect(await roomExists(body.roomName)).toBe(true);
    const res = await h.api(`/v1/calls/${body.callId}/end`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: 'ended', endReason: 'ended_by_api', roomDeleted: true, botStopped: true });
    expect(await roomExists(body.roomName)).toBe(false);
    expect(engine.calls.has(body.callId)).toBe(false);
    const again = await h.api(`/v1/calls/${body.callId}/end`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ state: 'ended', roomDeleted: true });
  });
});

describe('POST /v1/tokens', () => {
  it('mints least-privilege tokens per role', async () => {
    const { body } = await createCall();
    const verifier = new TokenVerifier(livekit.apiKey, livekit.apiSecret);
    const grants: Record<string, any> = {};
    for (const role of ['caller', 'dispatcher', 'observer']) {
      const res = await h.api('/v1/tokens', { method: 'POST', json: { callId: body.callId, role, ttlS: 600 } });
      expect(res.status).toBe(200);
      const minted = (await res.json()) as { token: string; identity: string; roomName: string };
      expect(minted.roomName).toBe(body.roomName);
      const claims = await verifier.verify(minted.token);
      expect(claims.sub).toBe(minted.identity);
      expect(Number(claims.exp) - Number(claims.nbf)).toBe(600);
      grants[role] = claims.video;
    }
    expect(grants.caller).toMatchObject({ canPublish: true, canSubscribe: true, canPublishData: false, canPublishSources: ['microphone'] });
    expect(grants.dispatcher).toMatchObject({ canPublish: true, canSubscribe: true, canPublishData: true });
    expect(grants.observer).toMatchObject({ canPublish: false, canSubscribe: true, canPublishData: false, hidden: true });
    for (const g of Object.values(grants)) {
      expect(g.roomAdmin).toBeUndefined();
      expect(g.roomCreate).toBeUndefined();
    }
  });

  it('refuses tokens for an ended call', async () => {
    const { body } = await createCall();
    await h.api(`/v1/calls/${body.callId}/end`, { method: 'POST' });
    const res = await h.api('/v1/tokens', { method: 'POST', json: { callId: body.callId, role: 'observer' } });
    expect(res.status).toBe(409);
    expect(((await res.json()) as any).error.code).toBe('VE_CALL_ENDED');
  });
});

describe('POST /v1/calls/:id/handoff', () => {
  it('turns the bot into a transcriber and gives the dispatcher a token', async () => {
    const { body } = await createCall();
    const res = await h.api(`/v1/calls/${body.callId}/handoff`, { method: 'POST', json: { botMode: 'transcriber', agentIdentity: 'dispatcher-jo' } });
    expect(res.status).toBe(200);
    const handoff = (await res.json()) as Record<string, any>;
    expect(handoff).toMatchObject({ agentIdentity: 'dispatcher-jo', botMode: 'transcriber', roomName: body.roomName });
    const claims = await new TokenVerifier(livekit.apiKey, livekit.apiSecret).verify(handoff.agentToken);
    expect(claims.video).toMatchObject({ canPublish: true, canPublishData: true, room: body.roomName });
    expect(engine.log).toContain(`setBotMode ${body.callId} transcriber`);
    expect(((await (await h.api(`/v1/calls/${body.callId}`)).json()) as any).state).toBe('human');
  });

  it('removes the bot', async () => {
    const { body } = await createCall();
    const res = await h.api(`/v1/calls/${body.callId}/handoff`, { method: 'POST', json: { botMode: 'remove' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).botMode).toBe('removed');
    expect(engine.calls.has(body.callId)).toBe(false);
  });
});

describe('recording', () => {
  it('starts and stops the engine-side WAV, refusing a second start and a stop without start', async () => {
    const { body } = await createCall();
    const stopEarly = await h.api(`/v1/calls/${body.callId}/recording/stop`, { method: 'POST' });
    expect(stopEarly.status).toBe(409);
    expect(((await stopEarly.json()) as any).error.code).toBe('VE_RECORDING_NOT_ACTIVE');

    const start = await h.api(`/v1/calls/${body.callId}/recording/start`, { method: 'POST' });
    expect(start.status).toBe(200);
    const started = (await start.json()) as any;
    expect(started.recording).toMatchObject({ status: 'active' });
    expect(started.recording.location).toMatch(new RegExp(`${body.callId}.*\\.wav$`));

    const twice = await h.api(`/v1/calls/${body.callId}/recording/start`, { method: 'POST' });
    expect(twice.status).toBe(409);
    expect(((await twice.json()) as any).error.code).toBe('VE_RECORDING_ACTIVE');

    const stop = await h.api(`/v1/calls/${body.callId}/recording/stop`, { method: 'POST' });
    expect(stop.status).toBe(200);
    const stopped = (await stop.json()) as any;
    expect(stopped.recording).toMatchObject({ status: 'ended', location: started.recording.location });
    expect(stopped.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('maps LiveKit egress being unavailable to 503 VE_EGRESS_UNAVAILABLE', async () => {
    const { body } = await createCall();
    const res = await h.api(`/v1/calls/${body.callId}/egress`, { method: 'POST', json: { action: 'start' } });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error.code).toBe('VE_EGRESS_UNAVAILABLE');
    const call = (await (await h.api(`/v1/calls/${body.callId}`)).json()) as any;
    expect(call.recording.status).toBe('unavailable');
    const stop = await h.api(`/v1/calls/${body.callId}/egress`, { method: 'POST', json: { action: 'stop' } });
    expect(stop.status).toBe(409);
    expect(((await stop.json()) as any).error.code).toBe('VE_EGRESS_NOT_ACTIVE');
  });
});

describe('auth, rate limits, health, metrics, OpenAPI', () => {
  it('limits each API key separately and answers 429 VE_RATE_LIMITED', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMITED_MAX + 2; i++) {
      const res = await h.api('/v1/calls?limit=1', { headers: { authorization: `Bearer ${LIMITED_API_KEY}` } });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(((await res.json()) as any).error.code).toBe('VE_RATE_LIMITED');
        expect(res.headers.get('retry-after')).not.toBeNull();
      } else {
        await res.body?.cancel();
      }
    }
    expect(statuses.at(-1)).toBe(429);
    // The other key is unaffected.
    expect((await h.api('/v1/calls?limit=1', { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).status).toBe(200);
  });

  it('serves /healthz, /readyz and /metrics without a key', async () => {
    expect((await fetch(`${h.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', store: 'embedded reachable' });
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ve_http_requests_total\{method="POST",route="\/v1\/calls",status="201"\} [1-9]/m);
    expect(metrics).toMatch(/^ve_calls_active \d+$/m);
    expect(metrics).toMatch(/^ve_outbox_backlog \d+$/m);
    expect(metrics).toMatch(/^ve_engine_frame_latency_p99_ms /m);
    expect(metrics).toMatch(/^ve_http_request_duration_seconds_count [1-9]/m);
  });

  it('stays ready while the engine is full, reporting capacity separately', async () => {
    engine.maxCalls = engine.calls.size;
    const res = await fetch(`${h.baseUrl}/readyz`);
    // A full node must keep receiving /end, handoffs and webhooks for the calls it hosts.
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', acceptingCalls: false, activeCalls: engine.calls.size, maxCalls: engine.calls.size });
    const load = (await (await h.api('/v1/engine')).json()) as any;
    expect(load.capacity).toMatchObject({ acceptingCalls: false, maxCalls: engine.calls.size });
    const { res: create, body } = await createCall();
    expect(create.status).toBe(503);
    expect(body.error.code).toBe('VE_AT_CAPACITY');
    expect(Number(create.headers.get('retry-after'))).toBeGreaterThan(0);
    engine.maxCalls = 1000;
    expect(await (await fetch(`${h.baseUrl}/readyz`)).json()).toMatchObject({ acceptingCalls: true });
  });

  it('serves an OpenAPI document generated from the route schemas', async () => {
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as any;
    expect(doc.openapi).toMatch(/^3\./);
    const create = doc.paths['/v1/calls'].post;
    expect(create.requestBody.content['application/json'].schema.properties).toHaveProperty('callerIdentity');
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '409', '503']));
    for (const path of ['/v1/calls/{id}/handoff', '/v1/tokens', '/v1/livekit/webhook', '/v1/calls/{id}/events', '/v1/calls/{id}/egress']) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });
});
