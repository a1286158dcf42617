/**
 * Provider faults in the middle of real calls on LiveKit: the recogniser's socket drops, the LLM fails or
 * hangs, speech synthesis fails. Each call goes on, says so in its events, loses no final transcript,
 * and the other call is not affected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { synthesizeSpeech } from './support/speech.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { waitFor, type TestCaller } from './support/caller.ts';

let harness: VoiceHarness;

beforeAll(async () => {
  // Not a setting: a 1.5 s LLM deadline (product 5 s) keeps the hung-LLM case short.
  harness = await startVoiceHarness({ call: { llmTimeoutMs: 1500 } });
});

afterAll(async () => {
  await harness?.close();
  await dispose();
});

const speech = (text: string) => synthesizeSpeech(text, { sampleRate: 48_000 });

/** Speaks, then waits until the bot has answered that turn with audio at the caller. */
async function turn(caller: TestCaller, callId: string, text: string): Promise<number> {
  const before = eventsOf(harness.events, callId, 'transcript', { speaker: 'bot' }).length;
  const spoken = caller.say(speech(text));
  await spoken.done;
  await waitFor(`bot reply on ${callId}`, () => eventsOf(harness.events, callId, 'transcript', { speaker: 'bot' }).length > before, 30_000);
  return spoken.startedAt;
}

describe('provider faults', () => {
  it('keeps calls going through an STT drop, an LLM failure and timeout, and a TTS failure', async () => {
    const a = await harness.placeCall('fault-a');
    const b = await harness.placeCall('fault-b');

    // The recogniser's socket drops between utterances: it reconnects and the call keeps being heard.
    // (That no final is lost or repeated across a drop in the middle of an utterance is real-call.test.ts.)
    await turn(a, 'fault-a', 'Can you hear me now?');
    const finalsBefore = eventsOf(harness.events, 'fault-a', 'transcript', { speaker: 'caller', final: true }).map((e) => e.data.segmentId);
    expect(finalsBefore.length).toBeGreaterThan(0);
    harness.deepgram.dropAll();
    await turn(a, 'fault-a', 'Is the dock open tonight?');
    const finalsAfter = eventsOf(harness.events, 'fault-a', 'transcript', { speaker: 'caller', final: true }).map((e) => e.data.segmentId);
    expect(finalsAfter.length).toBeGreaterThan(finalsBefore.length);
    expect(harness.deepgram.upgradeAttempts).toBeGreaterThan(2);

    // The LLM answers 500: an error event and a short spoken fallback.
    harness.openai.failNext({ kind: 'status', status: 500 });
    await turn(a, 'fault-a', 'Where do I unload the trailer?');
    expect(eventsOf(harness.events, 'fault-a', 'error', { stage: 'llm', code: 'VE_LLM_FAILED' })).toHaveLength(1);
    expect(eventsOf(harness.events, 'fault-a', 'transcript', { speaker: 'bot' }).at(-1)?.data.text).toBe(harness.engine.call('fault-a')!.settings.fallbackReply);

    // The LLM hangs: a timeout, and the same fallback.
    harness.openai.failNext({ kind: 'hang' });
    await turn(a, 'fault-a', 'Can you send someone to help?');
    expect(eventsOf(harness.events, 'fault-a', 'error', { stage: 'llm', code: 'VE_LLM_TIMEOUT' })).toHaveLength(1);

    // Speech synthesis fails: an error event, the bot goes back to listening, and the next turn works.
    harness.elevenlabs.failNext({ kind: 'status', status: 500 });
    const failedAt = a.say(speech('What time is it there?'));
    await failedAt.done;
    await waitFor('TTS error', () => eventsOf(harness.events, 'fault-a', 'error', { stage: 'tts' })[0], 30_000);
    await waitFor('listening after the TTS failure', () => harness.engine.call('fault-a')?.botState === 'listening');
    await turn(a, 'fault-a', 'Are you still there?');

    // The other call saw none of it and still gets answers.
    const heardAt = await turn(b, 'fault-b', 'Can you send someone to help?');
    expect(b.firstAudible(heardAt)).not.toBeNull();
    expect(eventsOf(harness.events, 'fault-b', 'error').filter((e) => e.data.stage !== 'stt')).toEqual([]);
    expect(eventsOf(harness.events, 'fault-b', 'transcript', { speaker: 'bot' }).every((e) => e.data.text !== harness.engine.call('fault-b')!.settings.fallbackReply)).toBe(true);

    await harness.engine.stopBot('fault-a');
    await harness.engine.stopBot('fault-b');
  });
});
