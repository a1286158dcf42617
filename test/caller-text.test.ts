/**
 * Text from the caller's app, on the real engine and a real LiveKit server: what the caller sends on
 * LiveKit's `lk.chat` topic (as LiveKit's chat components do) is a user turn. The LLM stand-in is asked
 * with the typed text, the caller hears the answer, and the call's transcript has the text as a final
 * caller segment marked `source: 'text'`. Someone else in the room (a dispatcher listening in) is not
 * talking to the bot: their messages are ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { CHAT_TOPIC } from '../engine/transport/livekit-transport.ts';
import type { WireMessage } from '../engine/providers/local/openai-server.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { TestCaller, waitFor } from './support/caller.ts';

let harness: VoiceHarness;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  harness = await startVoiceHarness();
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {});
  await harness?.close();
  await dispose();
});

const contentText = (content: WireMessage['content']): string =>
  typeof content === 'string' ? content : (content ?? []).map((part) => part.text ?? '').join('');

/** The user messages the LLM stand-in was sent, in order. */
const userMessagesToLlm = () =>
  harness.openai.requests.map((r) => r.body.messages.filter((m) => m.role === 'user').map((m) => contentText(m.content).trim()));

describe('text from the caller (lk.chat)', () => {
  it("answers the caller's typed question, and ignores another participant's", async () => {
    const callId = 'typed';
    const caller = await harness.placeCall(callId);
    const dispatcher = await TestCaller.join({ ...harness.livekit, roomName: `room-${callId}`, identity: `dispatcher-${callId}` });
    cleanups.push(() => dispatcher.leave());

    // The dispatcher's message goes first: by the time the caller's is answered, it has long arrived.
    await dispatcher.room.localParticipant!.sendText('Tell them the load is cancelled.', { topic: CHAT_TOPIC });
    await new Promise((r) => setTimeout(r, 300));
    const sentAt = performance.now();
    await caller.room.localParticipant!.sendText('Where is load 42?', { topic: CHAT_TOPIC });

    const typed = await waitFor('the typed caller segment', () => eventsOf(harness.events, callId, 'transcript', { speaker: 'caller', source: 'text' })[0]);
    expect(typed.data).toMatchObject({ speaker: 'caller', text: 'Where is load 42?', final: true, source: 'text' });
    await waitFor('the LLM asked with the typed text', () => userMessagesToLlm().some((m) => m.at(-1) === 'Where is load 42?'));
    const heardAt = await waitFor('the caller hears the answer', () => caller.firstAudible(sentAt), 20_000);
    const bot = await waitFor('the bot transcript', () => eventsOf(harness.events, callId, 'transcript', { speaker: 'bot', final: true })[0], 20_000);
    expect(bot.data.text).toContain('You said: Where is load 42?');
    console.log(`typed question to first bot audio at the caller: ${Math.round(heardAt - sentAt)} ms`);

    // The dispatcher's message reached neither the transcript nor the LLM.
    const everything = JSON.stringify(eventsOf(harness.events, callId));
    expect(everything).not.toContain('cancelled');
    expect(userMessagesToLlm().flat().some((m) => m.includes('cancelled'))).toBe(false);
  });

  it('interrupts the bot when the caller types while it speaks, and answers the new text', async () => {
    const callId = 'typed-over';
    const caller = await harness.placeCall(callId);
    const sentAt = performance.now();
    await caller.room.localParticipant!.sendText('Where is load 7?', { topic: CHAT_TOPIC });
    await waitFor('the caller hears the first answer', () => caller.firstAudible(sentAt), 20_000);
    await caller.room.localParticipant!.sendText('Which dock?', { topic: CHAT_TOPIC });

    const interrupted = await waitFor('the interruption', () => eventsOf(harness.events, callId, 'interruption', { event: 'interrupted' })[0]);
    expect(interrupted.data).toMatchObject({ event: 'interrupted', turnId: 0 });
    // When the caller heard none of the first answer's words, the conversation joins the two texts into one user message.
    await waitFor('the LLM asked with the second text', () => userMessagesToLlm().some((m) => m.at(-1)?.endsWith('Which dock?')));
    // The first answer's final holds only what was heard of it (nothing, if no word had played yet).
    const answer = await waitFor('the answer to the second text', () =>
      eventsOf(harness.events, callId, 'transcript', { speaker: 'bot', final: true }).find((e) => e.data.text.includes('Which dock?')), 20_000);
    expect(answer.data.text).toMatch(/^You said: (Where is load 7\? )?Which dock\?/);
    expect(eventsOf(harness.events, callId, 'transcript', { speaker: 'caller', source: 'text' }).map((e) => e.data.text)).toEqual(['Where is load 7?', 'Which dock?']);
  });
});
