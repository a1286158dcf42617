import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, EngineEventDataMap, EngineEventType } from '../events.ts';
import { loadResamplerModule } from '../stages/resampler.ts';
import type { ScriptedReply } from '../../test/fakes/providers.ts';
import { ScriptedLlm, ScriptedStt, ToneTts } from '../../test/fakes/providers.ts';
import { FakeCallMedia, FakeCallTransport, waitUntil } from '../../test/fakes/call.ts';
import { DEFAULT_VOICE_CALL_SETTINGS, TYPED_TURN_ID, VoiceCall } from './voice-call.ts';

/**
 * What the caller types in its app (LiveKit's `lk.chat`, handed over by the transport): a user turn
 * like a spoken one, over the in-memory fakes of voice-call.test.ts.
 */

const open: VoiceCall[] = [];

beforeAll(async () => {
  await loadResamplerModule();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function setup(replies: ScriptedReply[], msPerChar = 5) {
  const media = new FakeCallMedia();
  const transport = new FakeCallTransport();
  const llm = new ScriptedLlm(replies);
  const tts = new ToneTts({ msPerChar, pieceMs: 1000 });
  const call = new VoiceCall({ callId: 'c1', media, transport, stt: new ScriptedStt(), llm, tts });
  open.push(call);
  const log: EngineEvent[] = [];
  call.events.on((e) => void log.push(e));
  return { call, media, transport, llm, tts, log };
}

function dataOf<T extends EngineEventType>(log: EngineEvent[], type: T): Array<EngineEventDataMap[T]> {
  return log.filter((e) => e.type === type).map((e) => e.data as EngineEventDataMap[T]);
}

const listeningAfter = (h: ReturnType<typeof setup>, count: number) => () =>
  dataOf(h.log, 'bot_status').filter((d) => d.state === 'listening').length >= count && h.call.botState === 'listening';

describe('VoiceCall: text from the caller', () => {
  it('answers a typed message like a spoken turn: a final caller segment marked text, the LLM asked with it, the reply spoken', async () => {
    const h = setup([ScriptedLlm.text('It arrives at noon.')]);
    h.call.handleCallerText('  Where is load 42?  ');
    await waitUntil('the reply played out', listeningAfter(h, 1));

    expect(h.log.map((e) => e.type)).toEqual(['transcript', 'bot_status', 'bot_status', 'transcript', 'bot_status']);
    expect(dataOf(h.log, 'transcript')).toEqual([
      { segmentId: 'c1:caller:text:0', speaker: 'caller', text: 'Where is load 42?', final: true, source: 'text' },
      { segmentId: 'c1:bot:1', speaker: 'bot', text: 'It arrives at noon.', final: true, turnId: TYPED_TURN_ID },
    ]);
    expect(h.llm.requests).toHaveLength(1);
    expect(h.llm.requests[0].messages).toEqual([
      { role: 'system', content: DEFAULT_VOICE_CALL_SETTINGS.instructions },
      { role: 'user', content: 'Where is load 42?' },
    ]);
    expect(h.tts.texts).toEqual(['It arrives at noon.']);
    expect(h.transport.audibleFrames).toBeGreaterThan(0);
    expect(h.transport.states).toEqual(['thinking', 'speaking', 'listening']);
    // The caller's app shows what it sent: the room gets only the bot's words back.
    expect(h.transport.transcripts.every((t) => t.speaker === 'bot')).toBe(true);
    // No turn detector ended it: no turn latency.
    expect(dataOf(h.log, 'latency')).toEqual([]);

    // Empty messages are no turn.
    h.call.handleCallerText('   ');
    expect(dataOf(h.log, 'transcript')).toHaveLength(2);
  });

  it('interrupts the bot while it speaks, as LiveKit Agents does, and answers the text', async () => {
    const first = 'Your load is on the way.';
    const long = `${first} It left the depot this morning and should reach the warehouse before noon today.`;
    const h = setup([ScriptedLlm.text(long), ScriptedLlm.text('Dock four.')], 20);
    h.call.handleCallerText('Where is my load?');
    await waitUntil('the first sentence was heard', () => h.transport.transcripts.some((t) => t.speaker === 'bot' && t.text.startsWith(first)));
    h.call.handleCallerText('Which dock?');
    const [interrupted] = dataOf(h.log, 'interruption');
    expect(interrupted).toMatchObject({ event: 'interrupted', turnId: TYPED_TURN_ID });
    if (interrupted.event !== 'interrupted') throw new Error('unreachable');
    await waitUntil('the second reply played out', () => h.tts.texts.includes('Dock four.') && h.call.botState === 'listening');
    expect(h.llm.requests[1].messages.slice(1)).toEqual([
      { role: 'user', content: 'Where is my load?' },
      { role: 'assistant', content: interrupted.heardText },
      { role: 'user', content: 'Which dock?' },
    ]);
    expect(interrupted.heardText.startsWith(first)).toBe(true);
    expect(interrupted.heardText.length).toBeLessThan(long.length);
  });

  it('in transcriber mode only transcribes it', async () => {
    const h = setup([ScriptedLlm.text('Never said.')]);
    h.call.setMode('transcriber');
    h.call.handleCallerText('Hello?');
    await new Promise((r) => setTimeout(r, 50));
    expect(dataOf(h.log, 'transcript')).toEqual([{ segmentId: 'c1:caller:text:0', speaker: 'caller', text: 'Hello?', final: true, source: 'text' }]);
    expect(h.llm.requests).toEqual([]);
  });
});
