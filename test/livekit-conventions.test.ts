/**
 * LiveKit's conventions as LiveKit's own clients read them, on the real engine and a real LiveKit
 * server: a participant that is not ours (rtc-node, and LiveKit's browser SDK in Chromium) reads the
 * call's room the way the agents playground and components' `useTranscriptions` do, and checks who
 * said what. Caller segments come in the caller's name with the caller's track, interim snapshots
 * (one revised) and then a final; the bot's come in the bot's name with the bot's track, one stream
 * whose words arrive as their audio plays; `lk.agent.state` goes initializing, listening, thinking,
 * speaking, listening; no `lk.` attribute is one LiveKit does not define. On a barge-in, the bot's text
 * in the room ends with what the caller heard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import { botIdentity } from '../engine/transport/bot-identity.ts';
import { synthesizeSpeech } from './support/speech.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { TestCaller, waitFor } from './support/caller.ts';
import { RtcNodeRoomReader, type ReadStream, type RoomView } from './support/room-reader.ts';
import { BrowserRoomReader } from './support/browser-room-reader.ts';

/** Attributes LiveKit defines (agents-js `constants.ts`, client-sdk-js `attribute-typings.ts`). */
const LIVEKIT_STREAM_ATTRIBUTES = ['lk.segment_id', 'lk.transcription_final', 'lk.transcribed_track_id'];
const LIVEKIT_PARTICIPANT_ATTRIBUTES = ['lk.agent.state', 'lk.agent.inputs', 'lk.agent.outputs', 'lk.agent.name', 'lk.publish_on_behalf'];

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

const speech = (text: string) => synthesizeSpeech(text, { sampleRate: 48_000 });
const textOf = (s: ReadStream) => s.chunks.map((c) => c.text).join('');

/** A call whose room the readers joined before the bot, so that they see its first state. */
async function placeObservedCall(callId: string, opts: { browser: boolean }) {
  const roomName = `room-${callId}`;
  await harness.rooms.createRoom({ name: roomName, emptyTimeout: 60 });
  const caller = await TestCaller.join({ ...harness.livekit, roomName, identity: `caller-${callId}` });
  cleanups.push(() => caller.leave());
  const reader = await RtcNodeRoomReader.join({ ...harness.livekit, roomName, identity: `reader-${callId}` });
  cleanups.push(() => reader.leave());
  const browser = opts.browser ? await BrowserRoomReader.join({ ...harness.livekit, roomName, identity: `browser-${callId}` }) : null;
  if (browser) cleanups.push(() => browser.close());
  await harness.engine.startBot({ callId, roomName, callerIdentity: caller.identity });
  return { caller, reader, browser, bot: botIdentity(callId) };
}

/** A sender's streams grouped by `lk.segment_id`, each group in arrival order. */
function segmentsOf(view: RoomView, sender: string): Map<string, ReadStream[]> {
  const segments = new Map<string, ReadStream[]>();
  for (const s of view.streams.filter((x) => x.sender === sender)) {
    const id = s.attributes['lk.segment_id'];
    segments.set(id, [...(segments.get(id) ?? []), s]);
  }
  return segments;
}

/** Who said what, as a LiveKit client reads it. */
function expectWhoSaidWhat(view: RoomView, who: { caller: string; bot: string; callerText: string; revisedInterim: string; botText: string }): void {
  const caller = view.participants[who.caller];
  const bot = view.participants[who.bot];
  expect(bot, 'the bot, under its reserved identity').toMatchObject({ isAgent: true });
  expect(caller).toMatchObject({ isAgent: false });
  expect(caller.microphoneSid).toBeTruthy();
  expect(bot.microphoneSid).toBeTruthy();

  for (const s of view.streams) {
    expect(s.ended, `stream ${s.streamId} ended`).toBe(true);
    expect([who.caller, who.bot]).toContain(s.sender);
    // Named by the track it transcribes: the caller's words by the caller's microphone.
    expect(s.attributes['lk.transcribed_track_id']).toBe(s.sender === who.caller ? caller.microphoneSid : bot.microphoneSid);
    for (const key of Object.keys(s.attributes)) if (key.startsWith('lk.')) expect(LIVEKIT_STREAM_ATTRIBUTES).toContain(key);
  }

  // The caller's segment: snapshots in the caller's name, interim ones (a revised guess among them), then one final.
  const callerSegments = [...segmentsOf(view, who.caller).values()];
  const spoken = callerSegments.find((list) => textOf(list.at(-1)!) === who.callerText);
  expect(spoken, 'the caller segment with the final text').toBeDefined();
  expect(spoken!.map((s) => s.attributes['lk.transcription_final'])).toEqual([...spoken!.slice(1).map(() => 'false'), 'true']);
  expect(spoken!.length).toBeGreaterThan(3);
  // Each snapshot is one the recogniser sent (its revised guess, or the words so far), in the order sent.
  // An interim already replaced by a newer one may be skipped on a busy machine (the transport sends
  // the newest), so the revised guess itself need not arrive; its handling is unit-tested in
  // engine/transport/livekit-transcription.test.ts.
  const words = who.callerText.split(' ');
  const prefixLengths = spoken!.slice(0, -1).map(textOf).filter((text) => text !== who.revisedInterim).map((text) => {
    const n = text.split(' ').length;
    expect(text, 'an interim the recogniser sent').toBe(words.slice(0, n).join(' '));
    return n;
  });
  expect(prefixLengths).toEqual([...prefixLengths].sort((a, b) => a - b));
  for (const list of callerSegments) expect(list.at(-1)!.attributes['lk.transcription_final']).toBe('true');

  // The bot's segment: one stream in the bot's name, opened non-final as agents-js does, its words appended.
  const botStreams = view.streams.filter((s) => s.sender === who.bot);
  expect(botStreams).toHaveLength(1);
  expect(botStreams[0].attributes['lk.transcription_final']).toBe('false');
  expect(botStreams[0].chunks.length).toBeGreaterThan(3);
  expect(textOf(botStreams[0])).toBe(who.botText);

  // LiveKit's agent states, in order; the bot is gone at the end and no state follows its last.
  expect(view.agentStates).toEqual(['initializing', 'listening', 'thinking', 'speaking', 'listening']);
  expect(view.left).toContain(who.bot);
  for (const key of view.attributeKeys) {
    if (key.startsWith('lk.')) expect(LIVEKIT_PARTICIPANT_ATTRIBUTES).toContain(key);
    else expect(key.startsWith('ve.'), `${key} uses the project's prefix`).toBe(true);
  }
}

describe('LiveKit conventions, read by LiveKit clients', () => {
  it('tells the caller from the bot in transcripts and follows the agent states', async () => {
    const callerText = 'Can you send someone to help me at the north gate?';
    const botText = 'The north gate is closed today. Please use the south entrance. Dock twelve is on your left after the fuel station.';
    harness.deepgram.setScript([callerText]);
    // The second guess is wrong and is corrected by the next ones, as a real recogniser does.
    harness.deepgram.interim = ({ count, text }) => (count === 2 ? 'Can ewe' : text.split(' ').slice(0, count).join(' '));
    harness.openai.responder = () => ({ text: botText });
    const { caller, reader, browser, bot } = await placeObservedCall('conventions', { browser: true });

    const spoken = caller.say(speech(callerText));
    await spoken.done;
    const audioStart = await waitFor('bot audio at the caller', () => caller.firstAudible(spoken.startedAt), 30_000);
    await waitFor('the bot transcript', () => eventsOf(harness.events, 'conventions', 'transcript', { speaker: 'bot' })[0], 30_000);
    const audioEnd = await waitFor('the bot done speaking', () => caller.silentSince(audioStart, 500), 30_000);
    await waitFor('listening again', () => reader.view.agentStates.includes('speaking') && reader.view.agentStates.at(-1) === 'listening');
    await harness.engine.stopBot('conventions');
    await waitFor('the bot gone', () => reader.view.left.includes(bot));
    let browserView = await browser!.view();
    for (const deadline = performance.now() + 20_000; !browserView.left.includes(bot) && performance.now() < deadline; browserView = await browser!.view()) {
      await new Promise((r) => setTimeout(r, 50));
    }

    expect(eventsOf(harness.events, 'conventions', 'transcript', { speaker: 'bot' })[0].data.text).toBe(botText);
    const who = { caller: caller.identity, bot, callerText, revisedInterim: 'Can ewe', botText };
    expectWhoSaidWhat(reader.view, who);
    expectWhoSaidWhat(browserView, who);

    // The bot's words arrive as their audio plays, not all at once before or after it.
    const botStream = reader.view.streams.find((s) => s.sender === bot)!;
    const firstWordAt = botStream.chunks[0].atMs;
    const lastWordAt = botStream.chunks.at(-1)!.atMs;
    expect(firstWordAt).toBeGreaterThan(audioStart - 100);
    expect(firstWordAt).toBeLessThan(audioStart + (audioEnd - audioStart) / 3);
    expect(lastWordAt - firstWordAt).toBeGreaterThan(0.6 * (audioEnd - audioStart));
    harness.deepgram.interim = undefined;
  }, 120_000);

  it('ends the bot’s text in the room with what the caller heard when cut off', async () => {
    const longReply =
      'Sure. The north gate closes at six, so you will need the south entrance today. Drive past the fuel station, turn left at the second light, and follow the signs for dock twelve. The guard will ask for your load number, so keep it ready.';
    harness.openai.responder = ({ messages }) => ({ text: messages.filter((m) => m.role === 'user').length === 1 ? longReply : 'Dock twelve.' });
    harness.deepgram.setScript(['Where do I unload the trailer?', 'Wait, stop, which dock did you say?']);
    const { caller, reader, bot } = await placeObservedCall('conventions-barge', { browser: false });

    await caller.say(speech('Where do I unload the trailer?')).done;
    await waitFor('bot audio', () => caller.firstAudible(0), 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    await caller.say(speech('Wait, stop, which dock did you say?')).done;
    const interrupted = await waitFor('interrupted event', () => eventsOf(harness.events, 'conventions-barge', 'interruption', { event: 'interrupted' })[0], 20_000);
    const heard = interrupted.data.event === 'interrupted' ? interrupted.data.heardText : '';
    // A client finds the agent by its kind, then reads its segments.
    const agent = Object.values(reader.view.participants).find((p) => p.isAgent)!;
    expect(agent.identity).toBe(bot);
    const cut = await waitFor('the cut segment ended', () => {
      const [first] = segmentsOf(reader.view, agent.identity).values();
      return first?.every((s) => s.ended) && first;
    });

    expect(heard.length).toBeGreaterThan(0);
    expect(heard.length).toBeLessThan(longReply.length);
    expect(cut).toHaveLength(1);
    expect(textOf(cut[0])).toBe(heard);
    expect(eventsOf(harness.events, 'conventions-barge', 'transcript', { speaker: 'bot' })[0].data.text).toBe(heard);
    // Sent as it was heard: several chunks before the cut, not the reply as written.
    expect(cut[0].chunks.length).toBeGreaterThan(1);
    expect(textOf(cut[0])).not.toContain('keep it ready');
    await harness.engine.stopBot('conventions-barge');
  }, 120_000);
});
