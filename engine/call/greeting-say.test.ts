import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, EngineEventDataMap, EngineEventType } from '../events.ts';
import { loadResamplerModule } from '../stages/resampler.ts';
import type { ScriptedReply } from '../../test/fakes/providers.ts';
import { ScriptedLlm, ScriptedStt, ToneTts } from '../../test/fakes/providers.ts';
import { FakeCallMedia, FakeCallTransport, waitUntil } from '../../test/fakes/call.ts';
import { VoiceCall } from './voice-call.ts';

/**
 * The bot speaking first (the greeting, on the caller's first audio) and on request (`say`), between
 * the in-memory fakes of voice-call.test.ts: what the caller hears, what the LLM is told, and whether
 * the caller's voice may cut it.
 */

const open: VoiceCall[] = [];

beforeAll(async () => {
  await loadResamplerModule();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function setup(opts: { replies: ScriptedReply[]; greeting?: string; msPerChar?: number }) {
  const media = new FakeCallMedia();
  const transport = new FakeCallTransport();
  const stt = new ScriptedStt();
  const llm = new ScriptedLlm(opts.replies, { chunkDelayMs: 0 });
  const tts = new ToneTts({ msPerChar: opts.msPerChar ?? 5, pieceMs: 1000 });
  const call = new VoiceCall({ callId: 'c1', media, transport, stt, llm, tts, ...(opts.greeting ? { greeting: opts.greeting } : {}) });
  open.push(call);
  const log: EngineEvent[] = [];
  call.events.on((e) => void log.push(e));
  return { call, media, transport, stt, llm, log };
}

function dataOf<T extends EngineEventType>(log: EngineEvent[], type: T): Array<EngineEventDataMap[T]> {
  return log.filter((e) => e.type === type).map((e) => e.data as EngineEventDataMap[T]);
}

const botFinals = (log: EngineEvent[]) => dataOf(log, 'transcript').filter((d) => d.speaker === 'bot' && d.final).map((d) => d.text);
const listeningAfter = (h: ReturnType<typeof setup>, count: number) => () =>
  dataOf(h.log, 'bot_status').filter((d) => d.state === 'listening').length >= count && h.call.botState === 'listening';

/** 20 ms of caller audio at the transport's rate. */
const frame = (h: ReturnType<typeof setup>) => new Int16Array(h.transport.callerSampleRate / 50);

describe('greeting', () => {
  it("is said once, on the caller's first audio, and enters the conversation as the bot's words", async () => {
    const greeting = 'Hello, this is dispatch. How can I help?';
    const h = setup({ replies: [ScriptedLlm.text('Sure.')], greeting });
    await new Promise((r) => setTimeout(r, 100));
    // Not when the bot joins: a caller who joins late must hear it.
    expect(h.transport.audibleFrames).toBe(0);
    expect(dataOf(h.log, 'bot_status')).toEqual([]);
    h.call.handleCallerAudio(frame(h));
    h.call.handleCallerAudio(frame(h));
    await waitUntil('the greeting played out', listeningAfter(h, 1));
    expect(dataOf(h.log, 'bot_status').map((d) => d.state)).toEqual(['speaking', 'listening']);
    expect(h.transport.audibleFrames).toBeGreaterThan(0);
    expect(botFinals(h.log)).toEqual([greeting]);
    expect(dataOf(h.log, 'latency')).toEqual([]);
    expect(h.llm.requests).toHaveLength(0);
    h.call.handleCallerAudio(frame(h));

    h.media.speechStart(1000);
    h.media.speechEnd(2000);
    h.stt.current.emit({ kind: 'final', text: 'Where is my load?', startMs: 1000, endMs: 1900 });
    h.media.turnComplete(1, { speechEndMs: 2000, decidedAtMs: 2200 });
    await waitUntil('the answer played out', listeningAfter(h, 2));
    expect(h.llm.requests[0].messages.slice(1)).toEqual([
      { role: 'assistant', content: greeting },
      { role: 'user', content: 'Where is my load?' },
    ]);
    expect(botFinals(h.log)).toEqual([greeting, 'Sure.']);
  });

  it('is interruptible like any reply', async () => {
    const h = setup({ replies: [], greeting: 'Hello, this is dispatch, your friendly assistant for loads, delays and problems on the road.', msPerChar: 20 });
    h.call.handleCallerAudio(frame(h));
    await waitUntil('the bot speaks', () => h.call.botState === 'speaking');
    h.media.speechStart(1000);
    h.stt.current.emit({ kind: 'interim', text: 'hi there I need help', startMs: 1000, endMs: 1400 });
    expect(dataOf(h.log, 'interruption').map((d) => d.event)).toEqual(['interrupted']);
    expect(h.call.botState).toBe('listening');
  });
});

describe('say', () => {
  const announcement = 'Attention please, the I-80 is closed at exit 12 because of an accident, use the detour.';

  it('interruptible: the caller cuts it like any reply', async () => {
    const h = setup({ replies: [], msPerChar: 20 });
    void h.call.say(announcement, { interruptible: true });
    await waitUntil('the bot speaks', () => h.call.botState === 'speaking');
    h.media.speechStart(1000);
    h.stt.current.emit({ kind: 'interim', text: 'ok ok got it', startMs: 1000, endMs: 1400 });
    expect(dataOf(h.log, 'interruption').map((d) => d.event)).toEqual(['interrupted']);
  });

  it('not interruptible: plays out over the caller, who is transcribed and answered after it', async () => {
    const h = setup({ replies: [ScriptedLlm.text('Take exit 11 instead.')], msPerChar: 10 });
    void h.call.say(announcement, { interruptible: false });
    await waitUntil('the bot speaks', () => h.call.botState === 'speaking');
    h.media.speechStart(1000);
    h.stt.current.emit({ kind: 'interim', text: 'wait which exit', startMs: 1000, endMs: 1400 });
    h.media.speechEnd(2000);
    h.stt.current.emit({ kind: 'final', text: 'Wait, which exit?', startMs: 1000, endMs: 1900 });
    h.media.turnComplete(1, { speechEndMs: 2000, decidedAtMs: 2200 });
    expect(h.call.botState).toBe('speaking');
    expect(h.llm.requests).toHaveLength(0);
    await waitUntil('the answer played out', listeningAfter(h, 2));
    expect(dataOf(h.log, 'interruption')).toEqual([]);
    expect(dataOf(h.log, 'transcript').filter((d) => d.speaker === 'caller').map((d) => d.text)).toContain('Wait, which exit?');
    expect(botFinals(h.log)).toEqual([announcement, 'Take exit 11 instead.']);
    expect(h.llm.requests[0].messages.slice(1)).toEqual([
      { role: 'assistant', content: announcement },
      { role: 'user', content: 'Wait, which exit?' },
    ]);
  });

  it('cuts a reply in flight, keeping what the caller heard of it', async () => {
    const long = 'Your load is on the way. It left the depot this morning and should reach the warehouse before noon today.';
    const h = setup({ replies: [ScriptedLlm.text(long)], msPerChar: 20 });
    h.media.speechStart(1000);
    h.media.speechEnd(2000);
    h.stt.current.emit({ kind: 'final', text: 'Where is my load?', startMs: 1000, endMs: 1900 });
    h.media.turnComplete(1, { speechEndMs: 2000, decidedAtMs: 2200 });
    await waitUntil('the reply speaks', () => h.call.botState === 'speaking');
    void h.call.say('Hold on.', { interruptible: true });
    await waitUntil('the say played out', () => botFinals(h.log).includes('Hold on.'));
    const [cut] = botFinals(h.log);
    expect(cut.length).toBeLessThan(long.length);
    expect(dataOf(h.log, 'interruption').map((d) => d.event)).toEqual(['interrupted']);
  });
});
