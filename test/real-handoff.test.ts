/**
 * Handing a call to a human dispatcher, through the API, with the real engine on the real LiveKit server:
 * `transcriber` keeps the bot in the room, silent, transcribing the caller; `remove` takes it out of the
 * room. What the engine does is checked from outside: the room's participants, the audio the caller
 * hears, the LLM requests the engine makes, and the transcript the API serves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { RoomServiceClient } from 'livekit-server-sdk';
import { inject } from 'vitest';
import { botIdentity } from '../engine/transport/bot-identity.ts';
import { synthesizeSpeech } from './support/speech.ts';
import { waitFor } from './support/caller.ts';
import { eventsOf, startServerHarness, type ServerHarness } from './support/server-harness.ts';

let h: ServerHarness;
const rooms = new RoomServiceClient(inject('livekitUrl').replace(/^ws/, 'http'), inject('livekitApiKey'), inject('livekitApiSecret'));

beforeAll(async () => {
  h = await startServerHarness();
  h.openai.responder = () => ({ text: 'I can help with that.' });
});

afterAll(async () => {
  await h?.close();
  await dispose();
});

const speech = (text: string) => synthesizeSpeech(text, { sampleRate: 48_000 });
const identitiesIn = async (roomName: string) => (await rooms.listParticipants(roomName)).map((p) => p.identity);

describe('handoff to a human dispatcher with the real engine', () => {
  it('transcriber: the bot stays, says nothing and asks the LLM nothing, and the caller is still transcribed', async () => {
    h.deepgram.setScript(['Can you hear me?', 'I want to speak to a person about my load.']);
    const { callId, roomName, caller } = await h.placeCall();
    await waitFor('the bot in the room', async () => (await identitiesIn(roomName)).includes(botIdentity(callId)), 20_000);

    // The bot answers while it is in charge.
    const first = caller.say(speech('Can you hear me?'));
    await first.done;
    await waitFor('the first answer', () => eventsOf(h.events, callId, 'transcript', { speaker: 'bot' })[0], 30_000);
    await waitFor('listening', () => h.server.engine.call(callId)?.botState === 'listening', 30_000);
    const llmRequestsBefore = h.openai.requests.length;

    const res = await h.api(`/v1/calls/${callId}/handoff`, { method: 'POST', json: { botMode: 'transcriber', agentName: 'Dana' } });
    expect(res.status).toBe(200);
    const handoff = (await res.json()) as { agentIdentity: string; agentToken: string; botMode: string };
    expect(handoff.botMode).toBe('transcriber');
    expect(handoff.agentIdentity).toMatch(/^dispatcher-/);
    // The path was reached: the engine switched the voice call itself.
    await waitFor('bot_mode transcriber', () => eventsOf(h.events, callId, 'bot_mode', { mode: 'transcriber' })[0], 5000);

    const second = caller.say(speech('I want to speak to a person about my load.'));
    await second.done;
    const final = await waitFor(
      'the caller transcribed after the handoff',
      () => eventsOf(h.events, callId, 'transcript', { speaker: 'caller', final: true }).find((e) => e.data.text.includes('speak to a person')),
      30_000,
    );
    expect(final.data.text).toBe('I want to speak to a person about my load.');
    // Long enough for an answer to have started if the bot were still answering (replies start within ~1 s here).
    await new Promise((r) => setTimeout(r, 3000));
    expect(h.openai.requests.length).toBe(llmRequestsBefore);
    expect(eventsOf(h.events, callId, 'transcript', { speaker: 'bot' })).toHaveLength(1);
    expect(caller.audibleMs(second.startedAt, performance.now())).toBe(0);
    expect(await identitiesIn(roomName)).toContain(botIdentity(callId));

    // The API's record: the human took over, and the caller's words after it are in the transcript.
    const detail = await waitFor(
      'the transcript in the store',
      async () => {
        const call = (await (await h.api(`/v1/calls/${callId}`)).json()) as { state: string; botMode: string; transcript: Array<{ speaker: string; text: string }> };
        return call.transcript.some((s) => s.text.includes('speak to a person')) ? call : undefined;
      },
      10_000,
    );
    expect(detail).toMatchObject({ state: 'human', botMode: 'transcriber' });
    expect(detail.transcript.map((s) => `${s.speaker}: ${s.text}`)).toEqual([
      'caller: Can you hear me?',
      'bot: I can help with that.',
      'caller: I want to speak to a person about my load.',
    ]);
  });

  it('remove: the bot leaves the room and the call stays with the human', async () => {
    const { callId, roomName } = await h.placeCall();
    await waitFor('the bot in the room', async () => (await identitiesIn(roomName)).includes(botIdentity(callId)), 20_000);
    const res = await h.api(`/v1/calls/${callId}/handoff`, { method: 'POST', json: { botMode: 'remove' } });
    expect(res.status).toBe(200);
    await waitFor('the bot gone from the room', async () => !(await identitiesIn(roomName)).includes(botIdentity(callId)), 10_000);
    expect(eventsOf(h.events, callId, 'call_ended')[0]?.data.reason).toBe('stopped');
    expect(h.server.engine.call(callId)).toBeUndefined();
    const call = (await (await h.api(`/v1/calls/${callId}`)).json()) as { state: string; botMode: string };
    expect(call).toMatchObject({ state: 'human', botMode: 'removed' });
  });
});
