/**
 * `VoiceEngine.startBot` with `join`: the bot enters the room with the URL and token it is given (an
 * agent job's, in the engine role) instead of minting its own. The engine here holds a wrong API secret,
 * so a token of its own is refused by the real LiveKit server: only the given token can get it in.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AccessToken, RoomServiceClient } from 'livekit-server-sdk';
import { dispose } from '@livekit/rtc-node';
import { botIdentity } from '../engine/transport/bot-identity.ts';
import { TestCaller, waitFor } from './support/caller.ts';
import { eventsOf, startVoiceHarness, type VoiceHarness } from './support/voice-harness.ts';

const url = inject('livekitUrl');
const apiKey = inject('livekitApiKey');
const apiSecret = inject('livekitApiSecret');
const rooms = new RoomServiceClient(url.replace(/^ws/, 'http'), apiKey, apiSecret);
let h: VoiceHarness;
const callers: TestCaller[] = [];

beforeAll(async () => {
  h = await startVoiceHarness({ livekit: { url, apiKey, apiSecret: 'not-the-secret-of-this-server-0123456789' } });
}, 60_000);

afterAll(async () => {
  await Promise.all(callers.map((c) => c.leave()));
  await h?.close();
  await dispose();
});

async function roomWithCaller(callId: string): Promise<{ roomName: string; caller: TestCaller }> {
  const roomName = `join-${callId}`;
  await rooms.createRoom({ name: roomName, emptyTimeout: 60 });
  const caller = await TestCaller.join({ url, apiKey, apiSecret, roomName, identity: `caller-${callId}` });
  callers.push(caller);
  return { roomName, caller };
}

describe('VoiceEngine.startBot with a given token', () => {
  it('joins with the given token as the call\'s bot and hosts the call (events as for any call)', async () => {
    const callId = randomUUID();
    const { roomName, caller } = await roomWithCaller(callId);
    const token = new AccessToken(apiKey, apiSecret, { identity: botIdentity(callId), attributes: { 've.test': 'given-token' } });
    token.kind = 'agent';
    token.addGrant({ roomJoin: true, room: roomName, canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: true, agent: true });

    await h.engine.startBot({ callId, roomName, callerIdentity: caller.identity, join: { url, token: await token.toJwt() } });
    expect(eventsOf(h.events, callId, 'bot_status', { state: 'listening' })).toHaveLength(1);
    const bot = await waitFor('the bot in the room', () => caller.room.remoteParticipants.get(botIdentity(callId)), 10_000);
    expect(bot.attributes['ve.test']).toBe('given-token');
    await h.engine.stopBot(callId);
    expect(eventsOf(h.events, callId, 'call_ended')).toHaveLength(1);
  }, 30_000);

  it('without one, mints its own (refused here: this engine holds the wrong secret)', async () => {
    const callId = randomUUID();
    const { roomName, caller } = await roomWithCaller(callId);
    await expect(h.engine.startBot({ callId, roomName, callerIdentity: caller.identity })).rejects.toThrow();
    expect(h.engine.capacity().activeCalls).toBe(0);
  }, 30_000);
});
