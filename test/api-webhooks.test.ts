/**
 * LiveKit webhooks: the real LiveKit server sends them to the app on 127.0.0.1 when a caller (connected
 * with @livekit/rtc-node and the token the API minted) joins and leaves; forged and replayed webhooks
 * are refused.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Room, dispose } from '@livekit/rtc-node';
import { AccessToken } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { startHarness, type Harness } from '../server/testing/harness.ts';
import { StoreFaults } from '../server/testing/store-faults.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';
import { freePort } from './support/process.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
const rooms: Room[] = [];
const faults = new StoreFaults();

beforeAll(async () => {
  // The app's port must be known before LiveKit starts, since LiveKit is told where to post.
  const port = await freePort();
  livekit = await startLiveKitServer({ webhookUrls: [`http://127.0.0.1:${port}/v1/livekit/webhook`] });
  const engine = new FakeEngine({
    // The bot really joins the room, as the engine would, so LiveKit reports it too.
    connectBot: async (req) => {
      const { token } = await h.livekit.mintToken({ role: 'bot', roomName: req.roomName, identity: `bot-${req.callId}`, ttlS: 600 });
      const room = new Room();
      await room.connect(livekit.url, token, { autoSubscribe: false, dynacast: false });
      return async () => room.disconnect();
    },
  });
  h = await startHarness({ livekit, engine, port, wrapStore: (store) => faults.wrap(store) });
});

afterAll(async () => {
  for (const room of rooms) await room.disconnect().catch(() => {});
  await h?.close();
  await livekit?.stop();
  await dispose();
});

async function getCall(callId: string): Promise<Record<string, any>> {
  return (await (await h.api(`/v1/calls/${callId}`)).json()) as Record<string, any>;
}

/** Signs a webhook body exactly as LiveKit does (JWT with the body's SHA-256, from the API key). */
async function sign(body: string, secret = livekit.apiSecret): Promise<string> {
  const at = new AccessToken(livekit.apiKey, secret, { ttl: 600 });
  at.sha256 = createHash('sha256').update(body).digest('base64');
  return at.toJwt();
}

function postWebhook(body: string, authorization?: string, contentType = 'application/webhook+json'): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (authorization !== undefined) headers.authorization = authorization;
  return fetch(`${h.baseUrl}/v1/livekit/webhook`, { method: 'POST', headers, body });
}

function eventBody(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    event: 'participant_joined',
    room: { name: 'call-not-ours' },
    participant: { identity: 'x' },
    id: `EV_${randomUUID()}`,
    createdAt: String(Math.floor(Date.now() / 1000)),
    ...overrides,
  });
}

describe('webhooks from the real LiveKit server', () => {
  it('marks the call active when the caller joins and records participants joining and leaving', async () => {
    const res = await h.api('/v1/calls', { method: 'POST', json: {} });
    const created = (await res.json()) as { callId: string; callerToken: string; callerIdentity: string; livekitUrl: string };
    const caller = new Room();
    rooms.push(caller);
    await caller.connect(created.livekitUrl, created.callerToken, { autoSubscribe: false, dynacast: false });

    await expect.poll(async () => (await getCall(created.callId)).state, { timeout: 15_000, interval: 200 }).toBe('active');
    await expect
      .poll(async () => (await getCall(created.callId)).participants.map((p: { identity: string; role: string }) => `${p.role}:${p.identity}`).sort(), {
        timeout: 15_000,
        interval: 200,
      })
      .toEqual([`bot:bot-${created.callId}`, `caller:${created.callerIdentity}`]);

    await caller.disconnect();
    await expect
      .poll(
        async () => (await getCall(created.callId)).participants.find((p: { identity: string }) => p.identity === created.callerIdentity)?.leftAt,
        { timeout: 15_000, interval: 200 },
      )
      .toBeDefined();

    // Ending deletes the room; LiveKit then reports room_finished, which must not disturb the ended call.
    expect((await h.api(`/v1/calls/${created.callId}/end`, { method: 'POST' })).status).toBe(200);
    await expect
      .poll(async () => (await (await fetch(`${h.baseUrl}/metrics`)).text()).match(/^ve_webhooks_total\{result="room_finished"\} (\d+)/m)?.[1], {
        timeout: 15_000,
        interval: 200,
      })
      .toBeDefined();
    expect((await getCall(created.callId)).endReason).toBe('ended_by_api');
  });
});

describe('forged and replayed webhooks', () => {
  it('refuses a missing, forged or mismatched signature with 401 VE_WEBHOOK_SIGNATURE', async () => {
    const body = eventBody();
    const cases = [
      await postWebhook(body),
      await postWebhook(body, 'not-a-jwt'),
      await postWebhook(body, await sign(body, 'some-other-secret-of-sufficient-length')),
      await postWebhook(body, await sign(eventBody())),
    ];
    for (const res of cases) {
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe('VE_WEBHOOK_SIGNATURE');
    }
  });

  it('refuses a replayed event id with 409 and an old event with 400', async () => {
    const body = eventBody();
    const first = await postWebhook(body, await sign(body));
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ status: 'ignored' });
    const replay = await postWebhook(body, await sign(body));
    expect(replay.status).toBe(409);
    expect(((await replay.json()) as any).error.code).toBe('VE_WEBHOOK_REPLAY');

    const old = eventBody({ createdAt: String(Math.floor(Date.now() / 1000) - 3600) });
    const stale = await postWebhook(old, await sign(old));
    expect(stale.status).toBe(400);
    expect(((await stale.json()) as any).error.code).toBe('VE_WEBHOOK_STALE');
  });

  it('applies a signed room_finished to our call once', async () => {
    const created = (await (await h.api('/v1/calls', { method: 'POST', json: {} })).json()) as { callId: string; roomName: string };
    const body = eventBody({ event: 'room_finished', room: { name: created.roomName }, participant: undefined });
    const res = await postWebhook(body, await sign(body));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'applied' });
    expect(await getCall(created.callId)).toMatchObject({ state: 'ended', endReason: 'room_finished' });
  });

  it('answers 503 when applying room_finished fails, and the retry of the same webhook ends the call', async () => {
    const created = (await (await h.api('/v1/calls', { method: 'POST', json: {} })).json()) as { callId: string; roomName: string };
    const body = eventBody({ event: 'room_finished', room: { name: created.roomName }, participant: undefined });
    faults.failNext('updateCall', 1, ([callId]) => callId === created.callId);
    const first = await postWebhook(body, await sign(body));
    expect(first.status).toBe(503);
    expect(((await first.json()) as any).error.code).toBe('VE_STORE_UNAVAILABLE');
    expect(faults.refused.get('updateCall')).toBe(1);
    expect((await getCall(created.callId)).state).not.toBe('ended');

    // LiveKit retries a 5xx with the same event id: it is applied, not refused as a replay.
    const retry = await postWebhook(body, await sign(body));
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ status: 'applied' });
    expect(await getCall(created.callId)).toMatchObject({ state: 'ended', endReason: 'room_finished' });
    // Once applied and marked, it is a replay.
    const again = await postWebhook(body, await sign(body));
    expect(again.status).toBe(409);
    expect(((await again.json()) as any).error.code).toBe('VE_WEBHOOK_REPLAY');
  });

  it('applies a join delivered again after the participant left without a phantom rejoin', async () => {
    const created = (await (await h.api('/v1/calls', { method: 'POST', json: {} })).json()) as { callId: string; roomName: string };
    const joinedAt = Math.floor(Date.now() / 1000) - 10;
    const participant = { identity: 'observer-7', attributes: { 've.role': 'observer' } };
    const join = eventBody({ event: 'participant_joined', room: { name: created.roomName }, participant, createdAt: String(joinedAt) });
    const left = eventBody({ event: 'participant_left', room: { name: created.roomName }, participant, createdAt: String(joinedAt + 1) });
    // The join is applied but its id cannot be recorded: 503, so LiveKit delivers it again later.
    // Only this event's id: the real LiveKit server's own webhooks for the new room arrive meanwhile.
    const idOf = (body: string) => (JSON.parse(body) as { id: string }).id;
    faults.failNext('markWebhookProcessed', 1, ([id]) => id === idOf(join));
    expect((await postWebhook(join, await sign(join))).status).toBe(503);
    expect((await postWebhook(left, await sign(left))).status).toBe(200);
    const retry = await postWebhook(join, await sign(join));
    expect(retry.status).toBe(200);
    const entries = (await getCall(created.callId)).participants.filter((p: { identity: string }) => p.identity === 'observer-7');
    expect(entries).toHaveLength(1);
    expect(entries[0].leftAt).toBeDefined();
    // A leave applied but not recorded, delivered again after the participant rejoined, does not end the
    // new presence.
    const rejoin = eventBody({ event: 'participant_joined', room: { name: created.roomName }, participant, createdAt: String(joinedAt + 2) });
    const leftAgain = eventBody({ event: 'participant_left', room: { name: created.roomName }, participant, createdAt: String(joinedAt + 3) });
    const rejoinAgain = eventBody({ event: 'participant_joined', room: { name: created.roomName }, participant, createdAt: String(joinedAt + 4) });
    expect((await postWebhook(rejoin, await sign(rejoin))).status).toBe(200);
    faults.failNext('markWebhookProcessed', 1, ([id]) => id === idOf(leftAgain));
    expect((await postWebhook(leftAgain, await sign(leftAgain))).status).toBe(503);
    expect((await postWebhook(rejoinAgain, await sign(rejoinAgain))).status).toBe(200);
    expect((await postWebhook(leftAgain, await sign(leftAgain))).status).toBe(200);
    const after = (await getCall(created.callId)).participants.filter((p: { identity: string }) => p.identity === 'observer-7');
    expect(after.map((p: { leftAt?: string }) => p.leftAt !== undefined)).toEqual([true, true, false]);
  });

  it('refuses other content types with 415', async () => {
    const body = eventBody();
    const res = await postWebhook(body, await sign(body), 'text/plain');
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).error.code).toBe('VE_UNSUPPORTED_MEDIA_TYPE');
  });
});
