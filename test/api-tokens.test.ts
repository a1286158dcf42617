/**
 * Tokens and identities against a real LiveKit server on loopback: no token outlives
 * `LIVEKIT_TOKEN_TTL_S`, the bot's identity (`bot-…`) cannot be minted or claimed through the API, the
 * human who takes a call over is a `dispatcher`, and the webhooks LiveKit sends record each participant
 * with its role.
 */
import { Room, dispose } from '@livekit/rtc-node';
import { AccessToken, TokenVerifier } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botIdentity } from '../engine/transport/bot-identity.ts';
import { ROLE_ATTRIBUTE } from '../server/livekit.ts';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { startHarness, type Harness } from '../server/testing/harness.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';
import { freePort } from './support/process.ts';

/** Shorter than the one-hour default, so that a schema left at 24 h would show. */
const TTL_S = 900;

let livekit: LiveKitServerHandle;
let h: Harness;
let verifier: TokenVerifier;
const rooms: Room[] = [];

beforeAll(async () => {
  const port = await freePort();
  livekit = await startLiveKitServer({ webhookUrls: [`http://127.0.0.1:${port}/v1/livekit/webhook`] });
  const engine = new FakeEngine({
    // The bot joins as the engine's does: reserved identity, LiveKit agent.
    connectBot: async (req) => {
      const { token } = await h.livekit.mintToken({ role: 'bot', roomName: req.roomName, identity: botIdentity(req.callId), ttlS: 600 });
      const room = new Room();
      await room.connect(livekit.url, token, { autoSubscribe: false, dynacast: false });
      return async () => room.disconnect();
    },
  });
  h = await startHarness({ livekit, engine, port, env: { LIVEKIT_TOKEN_TTL_S: String(TTL_S) } });
  verifier = new TokenVerifier(livekit.apiKey, livekit.apiSecret);
});

afterAll(async () => {
  for (const room of rooms) await room.disconnect().catch(() => {});
  await h?.close();
  await livekit?.stop();
  await dispose();
});

async function createCall(json: unknown = {}): Promise<{ callId: string; roomName: string; livekitUrl: string; callerToken: string; callerIdentity: string }> {
  const res = await h.api('/v1/calls', { method: 'POST', json });
  expect(res.status).toBe(201);
  return (await res.json()) as { callId: string; roomName: string; livekitUrl: string; callerToken: string; callerIdentity: string };
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  return { status: res.status, ...((await res.json()) as { error: { code: string; message: string } }).error };
}

describe('POST /v1/tokens', () => {
  it('mints up to LIVEKIT_TOKEN_TTL_S and refuses a longer ttlS with 400, as the OpenAPI document says', async () => {
    const { callId } = await createCall();
    const atMost = await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'observer', ttlS: TTL_S } });
    expect(atMost.status).toBe(200);
    const claims = await verifier.verify(((await atMost.json()) as { token: string }).token);
    expect(Number(claims.exp) - Number(claims.nbf)).toBe(TTL_S);
    const byDefault = await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'observer' } });
    const defaultClaims = await verifier.verify(((await byDefault.json()) as { token: string }).token);
    expect(Number(defaultClaims.exp) - Number(defaultClaims.nbf)).toBe(TTL_S);

    for (const ttlS of [TTL_S + 1, 86_400]) {
      const tooLong = await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'observer', ttlS } });
      const error = await errorOf(tooLong);
      expect(error, String(ttlS)).toMatchObject({ status: 400, code: 'VE_VALIDATION' });
      expect(error.message).toContain(`<= ${TTL_S}`);
    }
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as any;
    expect(doc.paths['/v1/tokens'].post.requestBody.content['application/json'].schema.properties.ttlS.maximum).toBe(TTL_S);
  });

  it('mints a dispatcher token (publish, data) and no longer knows the role agent', async () => {
    const { callId } = await createCall();
    const res = await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'dispatcher' } });
    expect(res.status).toBe(200);
    const minted = (await res.json()) as { token: string; identity: string };
    expect(minted.identity).toMatch(/^dispatcher-[0-9a-f-]{36}$/);
    const claims = await verifier.verify(minted.token);
    expect(claims.video).toMatchObject({ canPublish: true, canPublishData: true, canSubscribe: true, canPublishSources: ['microphone'] });
    expect(claims.attributes).toEqual({ [ROLE_ATTRIBUTE]: 'dispatcher' });
    const agent = await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'agent' } });
    expect(await errorOf(agent)).toMatchObject({ status: 400, code: 'VE_VALIDATION' });
  });
});

describe("the bot's identity is reserved", () => {
  it('cannot be minted through /v1/tokens, nor given as callerIdentity or agentIdentity', async () => {
    const { callId } = await createCall();
    const refused = [
      await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'caller', identity: botIdentity(callId) } }),
      await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'observer', identity: 'bot-anything' } }),
      await h.api('/v1/calls', { method: 'POST', json: { callerIdentity: 'bot-caller' } }),
      await h.api(`/v1/calls/${callId}/handoff`, { method: 'POST', json: { botMode: 'transcriber', agentIdentity: botIdentity(callId) } }),
    ];
    for (const res of refused) {
      const error = await errorOf(res);
      expect(error).toMatchObject({ status: 400, code: 'VE_VALIDATION' });
      expect(error.message).toContain('bot-');
    }
    // Identities that merely contain the prefix elsewhere are fine.
    const ok = await h.api('/v1/tokens', { method: 'POST', json: { callId, role: 'observer', identity: 'robot-bot-1' } });
    expect(ok.status).toBe(200);
    // Nothing was handed off by the refused request.
    expect(((await (await h.api(`/v1/calls/${callId}`)).json()) as { state: string }).state).toBe('created');
  });
});

describe('roles in the room, as LiveKit reports them by webhook', () => {
  it('records the caller, the bot (reserved identity), the dispatcher of a handoff and an unknown participant', async () => {
    const call = await createCall();
    const handoff = await h.api(`/v1/calls/${call.callId}/handoff`, { method: 'POST', json: { botMode: 'transcriber' } });
    expect(handoff.status).toBe(200);
    const { agentIdentity, agentToken } = (await handoff.json()) as { agentIdentity: string; agentToken: string };
    expect(agentIdentity).toMatch(/^dispatcher-[0-9a-f-]{36}$/);

    // Minted outside the control plane, without a role attribute: one with a bot- identity, one without.
    const outside = async (identity: string) => {
      const at = new AccessToken(livekit.apiKey, livekit.apiSecret, { identity, ttl: 600 });
      at.addGrant({ roomJoin: true, room: call.roomName, canSubscribe: true, canPublish: false });
      return at.toJwt();
    };
    const joins: [string, string][] = [
      [call.callerIdentity, call.callerToken],
      [agentIdentity, agentToken],
      ['bot-stray', await outside('bot-stray')],
      ['someone', await outside('someone')],
    ];
    for (const [, token] of joins) {
      const room = new Room();
      rooms.push(room);
      await room.connect(call.livekitUrl, token, { autoSubscribe: false, dynacast: false });
    }
    await expect
      .poll(
        async () => {
          const got = (await (await h.api(`/v1/calls/${call.callId}`)).json()) as { participants: { identity: string; role: string }[] };
          return got.participants.map((p) => `${p.role}:${p.identity}`).sort();
        },
        { timeout: 15_000, interval: 200 },
      )
      .toEqual(
        [`bot:${botIdentity(call.callId)}`, 'bot:bot-stray', `caller:${call.callerIdentity}`, `dispatcher:${agentIdentity}`, 'observer:someone'].sort(),
      );
  });
});
