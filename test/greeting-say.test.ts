/**
 * The greeting and `say` end to end: `startServer` with the real VoiceEngine on the real models and the
 * real LiveKit server, the providers' SDKs on the local stand-ins. A call created with a greeting: the
 * caller joins, its microphone sends (silent) audio, and it hears the greeting before it speaks; the bot
 * transcript event holds the greeting and the LLM is told it was said. Then `POST /say` is heard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { synthesizeSpeech } from './support/speech.ts';
import { TestCaller, waitFor } from './support/caller.ts';
import { eventsOf, startServerHarness, type ServerHarness } from './support/server-harness.ts';

let h: ServerHarness;
const callers: TestCaller[] = [];

beforeAll(async () => {
  h = await startServerHarness();
  h.openai.responder = () => ({ text: 'The dock is open until ten.' });
});

afterAll(async () => {
  await Promise.all(callers.map((c) => c.leave()));
  await h?.close();
  await dispose();
});

const botSaid = (callId: string, text: string) => () =>
  eventsOf(h.events, callId, 'transcript', { speaker: 'bot', final: true }).find((e) => e.data.text === text);

describe('greeting and say on a real call', () => {
  it('the caller hears the greeting before it speaks, then a say', async () => {
    const greeting = 'Hello, this is dispatch. How can I help you today?';
    const question = 'Is the dock open tonight?';
    h.deepgram.setScript([question]);
    const res = await h.api('/v1/calls', { method: 'POST', json: { callerName: 'test driver', greeting } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { callId: string; livekitUrl: string; callerIdentity: string; callerToken: string };
    const { callId } = body;
    const joinedAt = performance.now();
    const caller = await TestCaller.connect({ url: body.livekitUrl, token: body.callerToken, identity: body.callerIdentity });
    callers.push(caller);

    // The greeting: heard, and reported as the bot's words, before the caller said anything.
    const greeted = await waitFor('the greeting transcript', botSaid(callId, greeting), 30_000);
    const heardAt = caller.firstAudible(joinedAt);
    expect(heardAt, 'bot audio before the caller spoke').not.toBeNull();
    expect(greeted.data.turnId).toBe(0);
    expect(eventsOf(h.events, callId, 'bot_status', { state: 'speaking' }).length).toBeGreaterThanOrEqual(1);
    expect(h.openai.requests).toHaveLength(0);

    // The caller's first sentence starts after it heard the greeting; the LLM knows the greeting was said.
    await waitFor(`${callId} listening`, () => h.server.engine.call(callId)?.botState === 'listening', 30_000);
    const spoken = caller.say(synthesizeSpeech(question, { sampleRate: 48_000 }));
    expect(heardAt!).toBeLessThan(spoken.startedAt);
    await spoken.done;
    await waitFor('the answer', botSaid(callId, 'The dock is open until ten.'), 30_000);
    const messages = h.openai.requests[0].body.messages as Array<{ role: string; content: string }>;
    expect(messages.slice(1).map((m) => [m.role, m.content])).toEqual([
      ['assistant', greeting],
      ['user', question],
    ]);
    await waitFor(`${callId} listening`, () => h.server.engine.call(callId)?.botState === 'listening', 30_000);

    // A dispatcher's announcement: heard by the caller, and in the transcript.
    const announcement = 'Attention, the north gate closes in ten minutes.';
    const sayAt = performance.now();
    const said = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: announcement, interruptible: false } });
    expect(said.status).toBe(202);
    await waitFor('the announcement transcript', botSaid(callId, announcement), 30_000);
    expect(caller.firstAudible(sayAt), 'announcement audio').not.toBeNull();

    const ended = await h.api(`/v1/calls/${callId}/end`, { method: 'POST', json: {} });
    expect(ended.status).toBe(200);
  });
});
