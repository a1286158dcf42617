/**
 * The Smart Turn deadline through the whole call on a real LiveKit server: with the model slowed far
 * past SMART_TURN_DEADLINE_MS (a full box), a caller still gets an answer, decided on time by the
 * recogniser's end-of-speech signal (the Deepgram protocol's `speech_final` from the local stand-in, read
 * by the official SDK), and the rule that decided reaches the turn event, the latency record and the
 * engine's metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { synthesizeSpeech } from './support/speech.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { waitFor } from './support/caller.ts';

let harness: VoiceHarness;

beforeAll(async () => {
  harness = await startVoiceHarness({ media: { allowFaultInjection: true } });
});

afterAll(async () => {
  await harness?.close();
  await dispose();
});

describe('Smart Turn deadline', () => {
  it('answers on time by the recogniser\'s end of speech when Smart Turn cannot, and says so in the turn, the latency record and the metrics', async () => {
    // Every run holds the turn thread 3 s longer: no answer within the 250 ms deadline.
    harness.media.slowSmartTurn(3000);
    harness.deepgram.setScript(['My car broke down on the bridge.']);
    const caller = await harness.placeCall('deadline');
    const spoken = caller.say(synthesizeSpeech('My car broke down on the bridge.', { sampleRate: 48_000 }));
    await spoken.done;
    await waitFor('the latency record', () => eventsOf(harness.events, 'deadline', 'latency')[0], 30_000);

    const complete = eventsOf(harness.events, 'deadline', 'turn').find((e) => e.data.event === 'user_turn_complete');
    expect(complete?.data).toMatchObject({ event: 'user_turn_complete', rule: 'deadline_stt', probability: null });
    // Decided well before the silence rule (3 s after the speech) could have.
    if (complete?.data.event === 'user_turn_complete') expect(complete.data.decidedAtMs - complete.data.speechEndMs).toBeLessThan(1500);
    // The model never answered that pause: no result, and no error either (a missed deadline is not one).
    expect(eventsOf(harness.events, 'deadline', 'turn').filter((e) => e.data.event === 'smart_turn_result')).toEqual([]);
    expect(eventsOf(harness.events, 'deadline', 'error').filter((e) => e.data.stage === 'smart_turn')).toEqual([]);

    const latency = eventsOf(harness.events, 'deadline', 'latency')[0].data;
    expect(latency.smartTurn).toEqual({ rule: 'deadline_stt', probability: null });
    expect(latency.responseMs).toBeGreaterThan(0);

    const metrics = harness.engine.metrics();
    expect(metrics.turn_decisions_deadline_stt_total).toBe(1);
    expect(metrics.turn_decisions_model_total).toBe(0);
    expect(metrics.smart_turn_late_total + metrics.smart_turn_expired_total).toBeGreaterThanOrEqual(1);
    await harness.engine.stopBot('deadline');
  });
});
