/**
 * The voice loop on a real LiveKit server: a caller (rtc-node) speaks synthesised speech, the bot hears
 * it through the real media core and the providers' SDKs (pointed at local servers), answers, and the
 * caller hears the answer. Barge-in is measured on the caller's side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { synthesizeSpeech } from './support/speech.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { waitFor } from './support/caller.ts';

let harness: VoiceHarness;

beforeAll(async () => {
  harness = await startVoiceHarness();
});

afterAll(async () => {
  await harness?.close();
  await dispose();
});

const speech = (text: string) => synthesizeSpeech(text, { sampleRate: 48_000 });
const silence = (ms: number) => new Int16Array((48_000 * ms) / 1000);

describe('voice loop on LiveKit', () => {
  it('answers a caller, and the events arrive in order with latencies', async () => {
    harness.deepgram.setScript(['Can you send someone to help me at the north gate?']);
    const caller = await harness.placeCall('answer');
    const spoken = caller.say(speech('Can you send someone to help me at the north gate?'));
    await spoken.done;
    const heardAt = await waitFor('bot audio at the caller', () => caller.firstAudible(spoken.startedAt), 30_000);
    expect(heardAt).toBeGreaterThan(spoken.startedAt);
    await waitFor('the bot transcript', () => eventsOf(harness.events, 'answer', 'transcript', { speaker: 'bot' })[0], 30_000);

    const events = eventsOf(harness.events, 'answer');
    const order = (predicate: (e: (typeof events)[number]) => boolean, what: string) => {
      const index = events.findIndex(predicate);
      expect(index, what).toBeGreaterThanOrEqual(0);
      return index;
    };
    const speechStart = order((e) => e.type === 'vad' && e.data.event === 'speech_start', 'speech_start');
    const userStarted = order((e) => e.type === 'turn' && e.data.event === 'user_started_speaking', 'user_started_speaking');
    const callerFinal = order((e) => e.type === 'transcript' && e.data.speaker === 'caller' && e.data.final === true, 'caller final');
    const complete = order((e) => e.type === 'turn' && e.data.event === 'user_turn_complete', 'turn complete');
    const thinking = order((e) => e.type === 'bot_status' && e.data.state === 'thinking', 'thinking');
    const latency = order((e) => e.type === 'latency', 'latency');
    const speaking = order((e) => e.type === 'bot_status' && e.data.state === 'speaking', 'speaking');
    const botText = order((e) => e.type === 'transcript' && e.data.speaker === 'bot', 'bot transcript');
    expect(speechStart).toBeLessThan(userStarted);
    expect(userStarted).toBeLessThan(complete);
    expect(callerFinal).toBeLessThan(thinking);
    expect(complete).toBeLessThan(thinking);
    expect(thinking).toBeLessThan(speaking);
    expect(latency).toBeLessThan(botText);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => events[0].seq + i));

    const textOf = (index: number) => (events[index].type === 'transcript' ? events[index].data.text : '');
    expect(textOf(callerFinal)).toBe('Can you send someone to help me at the north gate?');
    expect(textOf(botText)).toContain('north gate');
    const stages = eventsOf(harness.events, 'answer', 'latency')[0].data;
    expect(stages.responseMs).toBeGreaterThan(0);
    for (const stage of ['endOfUtterance', 'sttFinal', 'llmFirstToken', 'ttsFirstByte'] as const) expect(stages.stagesMs[stage], stage).not.toBeNull();
    // The LLM saw the caller's words, and the bot's state reached the room as an attribute.
    expect(JSON.stringify(harness.openai.requests.at(-1)?.body.messages)).toContain('send someone to help');
    expect(caller.botAttributes.some((a) => a.attributes['lk.agent.state'] === 'speaking')).toBe(true);
    await harness.engine.stopBot('answer');
  });

  it('goes silent on a real barge-in, keeps only what was heard, and ignores coughs and "okay"', async () => {
    const longReply =
      'Sure. The north gate closes at six, so you will need the south entrance today. Drive past the fuel station, turn left at the second light, and follow the signs for dock twelve. The guard will ask for your load number, so keep it ready. After unloading, call us back and we will confirm the return trip.';
    harness.openai.responder = () => ({ text: longReply });
    harness.deepgram.setScript(['Where do I unload the trailer?', 'okay', 'Wait, stop, which dock did you say?']);
    const caller = await harness.placeCall('barge');
    await caller.say(speech('Where do I unload the trailer?')).done;
    const botStarted = await waitFor('bot audio', () => caller.firstAudible(0), 30_000);

    // "okay" over the bot: a backchannel, not an interruption.
    await new Promise((r) => setTimeout(r, 1500));
    const okay = caller.say(speech('okay'));
    await okay.done;
    await new Promise((r) => setTimeout(r, 1500));
    expect(eventsOf(harness.events, 'barge', 'interruption', { event: 'interrupted' })).toHaveLength(0);
    expect(caller.audibleMs(okay.startedAt + 1000, performance.now())).toBeGreaterThan(300);

    // A cough-like burst of noise: no words, so the reply is not stopped for good.
    const cough = new Int16Array(48_000 * 0.35).map(() => Math.round((Math.random() - 0.5) * 20_000));
    const coughed = caller.say(cough);
    await coughed.done;
    await new Promise((r) => setTimeout(r, 3000));
    expect(eventsOf(harness.events, 'barge', 'interruption', { event: 'interrupted' })).toHaveLength(0);
    expect(caller.audibleMs(coughed.startedAt + 2500, performance.now())).toBeGreaterThan(300);

    // A real interruption: the bot's audio at the caller goes quiet within the bound.
    const BOUND_MS = 1500;
    const cutIn = caller.say(speech('Wait, stop, which dock did you say?'));
    const quietAt = await waitFor('bot silence after barge-in', () => caller.silentSince(cutIn.startedAt, 300), 10_000);
    expect(quietAt - cutIn.startedAt).toBeLessThan(BOUND_MS);
    const interrupted = await waitFor('interrupted event', () => eventsOf(harness.events, 'barge', 'interruption', { event: 'interrupted' })[0]);
    const heard = interrupted.data.event === 'interrupted' ? interrupted.data.heardText : '';
    expect(heard.length).toBeGreaterThan(0);
    expect(longReply.startsWith(heard.replace(/…$/, ''))).toBe(true);
    expect(heard.length).toBeLessThan(longReply.length);
    expect(botStarted).toBeGreaterThan(0);
    await cutIn.done;
    // The next LLM request carries the reply as heard, not as written.
    await waitFor('the next LLM request', () => harness.openai.requests.length >= 2 && JSON.stringify(harness.openai.requests.at(-1)?.body.messages).includes('which dock'), 20_000);
    const history = JSON.stringify(harness.openai.requests.at(-1)?.body.messages);
    expect(history).toContain(heard.replace(/…$/, '').slice(0, 40));
    expect(history).not.toContain('confirm the return trip');
    await harness.engine.stopBot('barge');
  });
});

describe('room connection', () => {
  it('keeps answering after the bot’s connection is dropped and rebuilt', async () => {
    harness.openai.responder = ({ messages }) => ({ text: `Reply number ${messages.filter((m) => m.role === 'user').length}.` });
    const caller = await harness.placeCall('reconnect');
    await caller.say(speech('Can you hear me now?')).done;
    await waitFor('first reply', () => eventsOf(harness.events, 'reconnect', 'transcript', { speaker: 'bot' })[0], 30_000);
    await waitFor('bot listening', () => harness.engine.call('reconnect')?.botState === 'listening', 30_000);

    const { SimulateScenarioKind } = await import('@livekit/rtc-node');
    await harness.engine.transportOf('reconnect')!.room.simulateScenario(SimulateScenarioKind.SIMULATE_NODE_FAILURE);
    await new Promise((r) => setTimeout(r, 3000));

    const again = caller.say(speech('Are you still there?'));
    await again.done;
    await waitFor('second reply', () => eventsOf(harness.events, 'reconnect', 'transcript', { speaker: 'bot' })[1], 30_000);
    await waitFor('bot audio after the reconnect', () => caller.firstAudible(again.startedAt), 30_000);
    await harness.engine.stopBot('reconnect');
  });

  it('ends the call when the caller leaves and does not come back within the grace period', async () => {
    const caller = await harness.placeCall('leaver');
    await new Promise((r) => setTimeout(r, 500));
    const leftAt = performance.now();
    await caller.leave();
    const ended = await waitFor('call_ended', () => eventsOf(harness.events, 'leaver', 'call_ended')[0], 20_000);
    expect(ended.data.reason).toBe('caller_left');
    // The harness sets a 1 s grace period.
    expect(performance.now() - leftAt).toBeGreaterThanOrEqual(1000);
    expect(harness.engine.capacity().activeCalls).toBe(0);
  });
});
