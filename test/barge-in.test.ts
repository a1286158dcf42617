/**
 * Barge-in as the caller hears it, on the real engine (product defaults, native backend) and the real
 * LiveKit server. The engine stamps each interruption decision with `decidedAtMonoMs` (performance.now
 * of this process); the caller (rtc-node, same process) stamps every bot frame it receives, so the two
 * clocks are one and the cut is measured where it matters: at the caller's ear.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { synthesizeSpeech } from './support/speech.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { waitFor } from './support/caller.ts';

/** From the interrupt decision to the last bot frame the caller receives (issue 10). */
const CUT_BOUND_MS = 100;

let harness: VoiceHarness;

beforeAll(async () => {
  harness = await startVoiceHarness();
});

/** Calls placed so far; a retried test places a new one, so that its events are its own. */
const started: string[] = [];

afterEach(async () => {
  // A failed attempt must not leave its bot answering (and taking the recogniser's script) in the next one.
  for (const callId of started) await harness?.engine.stopBot(callId);
});

afterAll(async () => {
  await harness?.close();
  await dispose();
});

const speech = (text: string) => synthesizeSpeech(text, { sampleRate: 48_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const LONG_REPLY =
  'Sure. The north gate closes at six, so you will need the south entrance today. Drive past the fuel station, turn left at the second light, and follow the signs for dock twelve. The guard will ask for your load number, so keep it ready. After unloading, call us back and we will confirm the return trip.';

describe('barge-in at the caller', () => {
  // Measured here: the engine sends its last frame at most one 20 ms playout tick before the decision;
  // the rest is the path to the caller's ear, mostly the caller's jitter buffer, 40-90 ms on a quiet
  // machine and 100-150 ms when the 2 cores are oversubscribed. A retry is a re-run, each attempt held
  // to the same bound.
  it('ignores "okay", then goes silent within 100 ms of the interrupt decision and stays silent', { retry: 2 }, async () => {
    const callId = `barge-${started.length + 1}`;
    started.push(callId);
    const requestsBefore = harness.openai.requests.length;
    harness.openai.responder = () => ({ text: LONG_REPLY });
    harness.deepgram.setScript(['Where do I unload the trailer?', 'okay', 'Wait, stop, which dock did you say?']);
    const caller = await harness.placeCall(callId);
    await caller.say(speech('Where do I unload the trailer?')).done;
    await waitFor('bot audio', () => caller.firstAudible(0), 30_000);

    // "okay" over the bot: a backchannel, not an interruption.
    await sleep(1500);
    const okay = caller.say(speech('okay'));
    await okay.done;
    await sleep(1500);
    expect(eventsOf(harness.events, callId, 'interruption', { event: 'interrupted' })).toEqual([]);
    expect(caller.audibleMs(okay.startedAt + 1000, performance.now())).toBeGreaterThan(300);

    // A real interruption.
    const repliesBefore = eventsOf(harness.events, callId, 'bot_status', { state: 'speaking' }).length;
    const pausesBefore = eventsOf(harness.events, callId, 'interruption', { event: 'paused' }).length;
    const cutIn = caller.say(speech('Wait, stop, which dock did you say?'));
    const interrupted = await waitFor('interrupted event', () => eventsOf(harness.events, callId, 'interruption', { event: 'interrupted' })[0], 10_000);
    const decidedAt = interrupted.data.decidedAtMonoMs as number;
    expect(decidedAt).toBeGreaterThan(cutIn.startedAt);
    // Until the caller stops talking no new reply can start, so every bot frame in this window is the old one.
    await cutIn.done;
    const windowEnd = performance.now();
    expect(eventsOf(harness.events, callId, 'bot_status', { state: 'speaking' })).toHaveLength(repliesBefore);
    expect(windowEnd - decidedAt).toBeGreaterThan(1000);

    // The decision cut a bot that was talking (not one already paused or between sentences)...
    expect(eventsOf(harness.events, callId, 'interruption', { event: 'paused' })).toHaveLength(pausesBefore);
    expect(caller.audibleMs(decidedAt - 300, decidedAt)).toBeGreaterThanOrEqual(100);
    // ...and the caller's last bot frame came within the bound, with none after it.
    const lastHeard = caller.lastAudible(decidedAt - 300, windowEnd)!;
    const cutMs = lastHeard - decidedAt;
    console.info(`barge-in: last bot frame at the caller ${cutMs.toFixed(1)} ms after the interrupt decision`);
    expect(cutMs).toBeLessThan(CUT_BOUND_MS);
    expect(caller.audibleMs(lastHeard + 1, windowEnd)).toBe(0);

    // Only what was heard enters the conversation, and the next LLM request carries it as heard.
    const heard = interrupted.data.event === 'interrupted' ? interrupted.data.heardText : '';
    expect(heard.length).toBeGreaterThan(0);
    expect(heard.length).toBeLessThan(LONG_REPLY.length);
    expect(LONG_REPLY.startsWith(heard.replace(/…$/, ''))).toBe(true);
    const next = await waitFor(
      'the next LLM request',
      () => harness.openai.requests.slice(requestsBefore).find((r) => JSON.stringify(r.body.messages).includes('which dock')),
      20_000,
    );
    const history = JSON.stringify(next.body.messages);
    expect(history).toContain(heard.replace(/…$/, '').slice(0, 40));
    expect(history).not.toContain('confirm the return trip');
  });

  it('pauses for a hum the VAD hears as speech, and resumes the reply when no words follow', async () => {
    harness.openai.responder = () => ({ text: LONG_REPLY });
    // The recogniser finds no words in the hum (its segments come back empty).
    harness.deepgram.setScript(['Where do I unload the trailer?', '', '', '']);
    started.push('hum');
    const caller = await harness.placeCall('hum');
    await caller.say(speech('Where do I unload the trailer?')).done;
    await waitFor('bot audio', () => caller.firstAudible(0), 30_000);
    await sleep(1000);
    expect(harness.engine.call('hum')?.botState).toBe('speaking');

    // A hummed "mmm": Silero scores it as speech for about 1.6 s; white noise does not cross it at all.
    const startsBefore = eventsOf(harness.events, 'hum', 'vad', { event: 'speech_start' }).length;
    const hum = caller.say(synthesizeSpeech('mmmmmmmmmmm', { sampleRate: 48_000 }));
    await waitFor('speech_start for the hum', () => eventsOf(harness.events, 'hum', 'vad', { event: 'speech_start' }).length > startsBefore, 5000);
    const paused = await waitFor('paused', () => eventsOf(harness.events, 'hum', 'interruption', { event: 'paused' })[0], 5000);
    await hum.done;
    const resumed = await waitFor('resumed', () => eventsOf(harness.events, 'hum', 'interruption', { event: 'resumed' })[0], 8000);
    const pausedAt = paused.data.decidedAtMonoMs as number;
    const resumedAt = resumed.data.decidedAtMonoMs as number;

    const events = eventsOf(harness.events, 'hum');
    const speechStart = events.findLastIndex((e, i) => i < events.indexOf(paused) && e.type === 'vad' && e.data.event === 'speech_start');
    expect(speechStart).toBeGreaterThanOrEqual(0);
    expect(events.indexOf(paused)).toBeLessThan(events.indexOf(resumed));
    expect(resumed.data).toMatchObject({ event: 'resumed', falseInterruption: true });
    expect(eventsOf(harness.events, 'hum', 'interruption', { event: 'interrupted' })).toEqual([]);
    expect(eventsOf(harness.events, 'hum', 'transcript', { speaker: 'caller', final: true }).map((e) => e.data.text)).toEqual(['Where do I unload the trailer?']);
    // BARGE_IN_RESUME_MS (2000) of quiet after the pause before the reply resumes.
    expect(resumedAt - pausedAt).toBeGreaterThanOrEqual(2000);

    // At the caller: the bot was talking, went quiet for the pause, and talks again after the resume.
    expect(caller.audibleMs(pausedAt - 300, pausedAt)).toBeGreaterThanOrEqual(100);
    // (The cut's own latency is the test above; 200 ms here keeps this about the pause, not the jitter buffer.)
    expect(caller.audibleMs(pausedAt + 200, resumedAt)).toBe(0);
    const heardAgain = await waitFor('bot audio after the resume', () => caller.firstAudible(resumedAt), 3000);
    expect(heardAgain - resumedAt).toBeLessThan(500);
    await sleep(1000);
    expect(caller.audibleMs(resumedAt, performance.now())).toBeGreaterThan(300);
  });
});
