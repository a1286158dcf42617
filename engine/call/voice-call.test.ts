import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, EngineEventDataMap, EngineEventType } from '../events.ts';
import { LlmFailedError, SttDisconnectedError, SttUnavailableError, TtsFailedError } from '../providers/errors.ts';
import type { TextToSpeech, TtsAudio } from '../providers/tts.ts';
import { loadResamplerModule } from '../stages/resampler.ts';
import type { ScriptedReply } from '../../test/fakes/providers.ts';
import { ScriptedLlm, ScriptedStt, ToneTts } from '../../test/fakes/providers.ts';
import { FakeCallMedia, FakeCallTransport, waitUntil } from '../../test/fakes/call.ts';
import { CALL_TOOLS, DEFAULT_VOICE_CALL_SETTINGS, VoiceCall, type VoiceCallSettings } from './voice-call.ts';

/**
 * A VoiceCall between in-memory fakes: the test plays the media path's VAD and turn events and the
 * recogniser's results, and reads the call's events, what reached the room and what the LLM was asked.
 * Replies play out in real time (the process's playout clock; the tone TTS gives whole sentences so
 * that the output paces them), so they are kept short.
 */

const open: VoiceCall[] = [];

beforeAll(async () => {
  await loadResamplerModule();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function setup(opts: { replies: ScriptedReply[]; msPerChar?: number; llmChunkDelayMs?: number; tts?: TextToSpeech; settings?: Partial<VoiceCallSettings> }) {
  const media = new FakeCallMedia();
  const transport = new FakeCallTransport();
  const stt = new ScriptedStt();
  const llm = new ScriptedLlm(opts.replies, { chunkDelayMs: opts.llmChunkDelayMs ?? 0 });
  const tts = new ToneTts({ msPerChar: opts.msPerChar ?? 5, pieceMs: 1000 });
  const call = new VoiceCall({ callId: 'c1', media, transport, stt, llm, tts: opts.tts ?? tts, settings: opts.settings });
  open.push(call);
  const log: EngineEvent[] = [];
  call.events.on((e) => void log.push(e));
  return { call, media, transport, stt, llm, tts, log };
}

/** Each event as one short line, to pin their order. */
function lines(log: EngineEvent[]): string[] {
  return log.map((e) => {
    const d = e.data as unknown as Record<string, unknown>;
    switch (e.type) {
      case 'vad':
      case 'turn':
      case 'interruption':
        return `${e.type} ${d.event}`;
      case 'transcript':
        return `transcript ${d.speaker} ${d.final ? 'final' : 'interim'}`;
      case 'bot_status':
        return `bot_status ${d.state}`;
      case 'bot_mode':
        return `bot_mode ${d.mode}`;
      case 'error':
        return `error ${d.stage} ${d.code}`;
      default:
        return e.type;
    }
  });
}

function dataOf<T extends EngineEventType>(log: EngineEvent[], type: T): Array<EngineEventDataMap[T]> {
  return log.filter((e) => e.type === type).map((e) => e.data as EngineEventDataMap[T]);
}

/** The caller says `text` between `startMs` and `endMs`, the recogniser gives its final, the turn ends. */
function callerTurn(h: ReturnType<typeof setup>, turnId: number, text: string, startMs: number, endMs: number): void {
  h.media.speechStart(startMs);
  h.media.speechEnd(endMs);
  h.stt.current.emit({ kind: 'final', text, startMs, endMs: endMs - 100 });
  h.media.turnComplete(turnId, { speechEndMs: endMs, decidedAtMs: endMs + 200 });
}

const listeningAfter = (h: ReturnType<typeof setup>, count: number) => () =>
  dataOf(h.log, 'bot_status').filter((d) => d.state === 'listening').length >= count && h.call.botState === 'listening';

describe('VoiceCall', () => {
  it('answers a turn: thinking, speaking with its latency, the bot transcript, listening', async () => {
    const h = setup({ replies: [ScriptedLlm.text('It is on its way. It arrives at noon.')] });
    h.media.speechStart(1000);
    h.stt.current.emit({ kind: 'interim', text: 'where is', startMs: 1000, endMs: 1500 });
    h.media.speechEnd(2000);
    h.stt.current.emit({ kind: 'final', text: ' Where is my load? ', startMs: 1000, endMs: 1900 });
    h.media.turnComplete(1, { speechEndMs: 2000, decidedAtMs: 2200, probability: 0.93 });
    await waitUntil('the reply played out', listeningAfter(h, 1));

    expect(lines(h.log)).toEqual([
      'vad speech_start',
      'transcript caller interim',
      'vad speech_end',
      'transcript caller final',
      'turn user_turn_complete',
      'bot_status thinking',
      'bot_status speaking',
      'latency',
      'transcript bot final',
      'bot_status listening',
    ]);
    expect(h.log.map((e) => e.seq)).toEqual(h.log.map((_, i) => i + 1));
    expect(dataOf(h.log, 'vad')).toEqual([
      { event: 'speech_start', offsetMs: 1000 },
      { event: 'speech_end', offsetMs: 2000 },
    ]);
    expect(dataOf(h.log, 'turn')).toEqual([{ event: 'user_turn_complete', turnId: 1, probability: 0.93, rule: 'model', speechEndMs: 2000, decidedAtMs: 2200 }]);
    expect(dataOf(h.log, 'transcript')).toEqual([
      { segmentId: 'c1:caller:0', speaker: 'caller', text: 'where is', startMs: 1000, endMs: 1500, final: false },
      { segmentId: 'c1:caller:0', speaker: 'caller', text: ' Where is my load? ', startMs: 1000, endMs: 1900, final: true },
      { segmentId: 'c1:bot:1', speaker: 'bot', text: 'It is on its way. It arrives at noon.', final: true, turnId: 1 },
    ]);
    const [latency] = dataOf(h.log, 'latency');
    expect(latency).toEqual({
      turnId: 1,
      responseMs: expect.any(Number),
      stagesMs: { endOfUtterance: expect.any(Number), sttFinal: expect.any(Number), llmFirstToken: expect.any(Number), ttsFirstByte: expect.any(Number) },
      smartTurn: { probability: 0.93, rule: 'model' },
    });
    const { endOfUtterance, sttFinal, llmFirstToken, ttsFirstByte } = latency.stagesMs;
    for (const ms of [latency.responseMs, endOfUtterance, sttFinal, llmFirstToken, ttsFirstByte]) expect(ms).toBeGreaterThanOrEqual(0);
    expect(latency.responseMs).toBeGreaterThanOrEqual(endOfUtterance!);

    // The finals covered the speech: no need to ask the recogniser for more.
    expect(h.stt.current.finalizeCalls).toBe(0);
    expect(h.llm.requests).toHaveLength(1);
    expect(h.llm.requests[0].messages).toEqual([
      { role: 'system', content: DEFAULT_VOICE_CALL_SETTINGS.instructions },
      { role: 'user', content: 'Where is my load?' },
    ]);
    expect(h.llm.requests[0].tools).toEqual(CALL_TOOLS);
    expect(h.tts.texts).toEqual(['It is on its way.', 'It arrives at noon.']);

    // The room: the caller's words, the bot's growing as they play, its final text, and its states.
    expect(h.transport.states).toEqual(['thinking', 'speaking', 'listening']);
    const caller = h.transport.transcripts.filter((t) => t.speaker === 'caller');
    expect(caller).toEqual([
      { segmentId: 'c1:caller:0', speaker: 'caller', text: 'where is', final: false },
      { segmentId: 'c1:caller:0', speaker: 'caller', text: ' Where is my load? ', final: true },
    ]);
    const bot = h.transport.transcripts.filter((t) => t.speaker === 'bot');
    expect(bot.at(-1)).toEqual({ segmentId: 'c1:bot:1', speaker: 'bot', text: 'It is on its way. It arrives at noon.', final: true });
    expect(bot.slice(0, -1).every((t) => !t.final && t.segmentId === 'c1:bot:1' && 'It is on its way. It arrives at noon.'.startsWith(t.text))).toBe(true);
    expect(h.transport.audibleFrames).toBeGreaterThan(0);

    // The next turn's prompt holds the reply as said.
    callerTurn(h, 2, 'Thanks.', 4000, 4500);
    await waitUntil('the second reply played out', listeningAfter(h, 2));
    expect(h.llm.requests[1].messages.slice(1)).toEqual([
      { role: 'user', content: 'Where is my load?' },
      { role: 'assistant', content: 'It is on its way. It arrives at noon.' },
      { role: 'user', content: 'Thanks.' },
    ]);
    expect(dataOf(h.log, 'transcript').at(-1)).toMatchObject({ segmentId: 'c1:bot:2', turnId: 2 });
  });

  it("waits for the recogniser's final words after the turn decision, and gives up after sttFinalWaitMs", async () => {
    const h = setup({ replies: [ScriptedLlm.text('Noted.')], settings: { sttFinalWaitMs: 300 } });
    h.media.speechStart(1000);
    h.media.speechEnd(2000);
    h.media.turnComplete(1, { speechEndMs: 2000, decidedAtMs: 2200 });
    await new Promise((r) => setTimeout(r, 50));
    expect(h.stt.current.finalizeCalls).toBe(1);
    expect(lines(h.log).at(-1)).toBe('turn user_turn_complete');
    // A final that ends too early (more than 300 ms before the speech did) does not cover the turn...
    h.stt.current.emit({ kind: 'final', text: 'My truck', startMs: 1000, endMs: 1500 });
    await new Promise((r) => setTimeout(r, 30));
    expect(h.llm.requests).toHaveLength(0);
    // ...the one reaching its end does, and both are the turn's text.
    h.stt.current.emit({ kind: 'final', text: 'broke down.', startMs: 1500, endMs: 1950 });
    await waitUntil('the reply played out', listeningAfter(h, 1));
    expect(h.llm.requests[0].messages[1]).toEqual({ role: 'user', content: 'My truck broke down.' });
    expect(dataOf(h.log, 'transcript').filter((t) => t.speaker === 'caller').map((t) => t.segmentId)).toEqual(['c1:caller:0', 'c1:caller:1']);
    expect(dataOf(h.log, 'latency')[0].stagesMs.sttFinal).toEqual(expect.any(Number));

    // No final at all: the turn goes unanswered once the wait is over.
    const before = h.log.length;
    h.media.speechStart(5000);
    h.media.speechEnd(5600);
    h.media.turnComplete(2, { speechEndMs: 5600, decidedAtMs: 5800 });
    await new Promise((r) => setTimeout(r, 450));
    expect(lines(h.log.slice(before))).toEqual(['vad speech_start', 'vad speech_end', 'turn user_turn_complete']);
    expect(h.llm.requests).toHaveLength(1);
    expect(h.stt.current.finalizeCalls).toBe(2);
  });

  it("hands the recogniser's end-of-speech signals to the media path, where the turn detector's deadline fallback uses them", () => {
    const h = setup({ replies: [] });
    h.stt.current.endOfSpeech({ kind: 'speech_final', lastWordEndMs: 1450 });
    h.stt.current.endOfSpeech({ kind: 'utterance_end', lastWordEndMs: 1450 });
    expect(h.media.recognizerEndsOfSpeechMs).toEqual([1450, 1450]);
  });

  it('sends the recogniser 400 ms messages while the caller is quiet, 100 ms ones while they speak, flushed at each change', () => {
    const h = setup({ replies: [] });
    const frame = new Int16Array(320); // 20 ms at 16 kHz
    for (let i = 0; i < 25; i++) h.call.handleCallerAudio(frame);
    expect(h.stt.current.batches).toEqual([6400]);
    h.media.speechStart(500);
    expect(h.stt.current.batches).toEqual([6400, 1600]);
    for (let i = 0; i < 12; i++) h.call.handleCallerAudio(frame);
    expect(h.stt.current.batches).toEqual([6400, 1600, 1600, 1600]);
    h.media.speechEnd(740);
    expect(h.stt.current.batches).toEqual([6400, 1600, 1600, 1600, 640]);
    h.media.speechEnd(740);
    expect(h.stt.current.batches).toHaveLength(5);
    expect(h.media.writtenSamples).toBe(37 * 320);
    expect(h.stt.current.pushedSamples).toBe(37 * 320);
  });

  it('stops at once when the caller cuts in with words, keeping what they heard', async () => {
    const first = 'Your load is on the way.';
    const second = 'It left the depot this morning and should reach the warehouse before noon today.';
    const h = setup({ replies: [ScriptedLlm.text(`${first} ${second}`), ScriptedLlm.text('Sure.')], msPerChar: 20 });
    callerTurn(h, 1, 'Where is my load?', 1000, 2000);
    await waitUntil('the first sentence was heard', () => h.transport.transcripts.some((t) => t.speaker === 'bot' && t.text.startsWith(first)));
    const before = h.log.length;
    h.media.speechStart(5000);
    h.stt.current.emit({ kind: 'interim', text: 'no wait stop', startMs: 5000, endMs: 5400 });
    expect(lines(h.log.slice(before))).toEqual(['vad speech_start', 'transcript caller interim', 'transcript bot final', 'interruption interrupted', 'bot_status listening']);
    const [interrupted] = dataOf(h.log, 'interruption');
    expect(interrupted).toEqual({ event: 'interrupted', turnId: 1, playedMs: expect.any(Number), heardText: expect.any(String), decidedAtMonoMs: expect.any(Number) });
    if (interrupted.event !== 'interrupted') throw new Error('unreachable');
    const heard = interrupted.heardText;
    expect(heard.startsWith(first)).toBe(true);
    expect(`${first} ${second}`.startsWith(heard.replace(/…$/, ''))).toBe(true);
    expect(heard.length).toBeLessThan(`${first} ${second}`.length);
    expect(interrupted.playedMs).toBeGreaterThanOrEqual(first.length * 20 * 0.9);
    expect(dataOf(h.log, 'transcript').at(-1)).toEqual({ segmentId: 'c1:bot:1', speaker: 'bot', text: heard, final: true, turnId: 1 });
    expect(h.transport.transcripts.at(-1)).toEqual({ segmentId: 'c1:bot:1', speaker: 'bot', text: heard, final: true });
    expect(h.transport.states).toEqual(['thinking', 'speaking', 'listening']);
    // The room got the words as they played, each update extending the last, the heard text last.
    const botTexts = h.transport.transcripts.filter((t) => t.speaker === 'bot').map((t) => t.text);
    expect(botTexts.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < botTexts.length; i++) expect(botTexts[i].startsWith(botTexts[i - 1].replace(/…$/, ''))).toBe(true);

    // Silent from here on: nothing of the rest of the reply goes out.
    const audible = h.transport.audibleFrames;
    await new Promise((r) => setTimeout(r, 150));
    expect(h.transport.audibleFrames).toBe(audible);

    // The LLM's history holds what was heard, not what was written.
    h.media.speechEnd(5800);
    h.stt.current.emit({ kind: 'final', text: 'no wait stop', startMs: 5000, endMs: 5700 });
    h.media.turnComplete(2, { speechEndMs: 5800, decidedAtMs: 6000 });
    await waitUntil('the second reply played out', listeningAfter(h, 2));
    expect(h.llm.requests[1].messages.slice(1)).toEqual([
      { role: 'user', content: 'Where is my load?' },
      { role: 'assistant', content: heard },
      { role: 'user', content: 'no wait stop' },
    ]);
  });

  it('pauses for speech without words, resumes after falseInterruptionTimeoutMs or on a backchannel', async () => {
    const text = 'Your load is on the way and should reach the warehouse before noon today.';
    const h = setup({ replies: [ScriptedLlm.text(text)], msPerChar: 25, settings: { interruption: { minSpeechMs: 100, falseInterruptionTimeoutMs: 300 } } });
    callerTurn(h, 1, 'Where is my load?', 1000, 2000);
    await waitUntil('the bot speaks', () => h.call.botState === 'speaking');
    const before = h.log.length;
    const interruptions = () => dataOf(h.log, 'interruption').length;
    h.media.speechStart(5000);
    await waitUntil('a pause', () => interruptions() === 1, 2000);
    const audible = h.transport.audibleFrames;
    await new Promise((r) => setTimeout(r, 100));
    expect(h.transport.audibleFrames).toBe(audible);
    expect(h.call.botState).toBe('speaking');
    h.media.speechEnd(5400);
    await waitUntil('the bot resumes', () => interruptions() === 2, 2000);
    // Paused again, and resumed at once by a backchannel.
    h.media.speechStart(6000);
    await waitUntil('a second pause', () => interruptions() === 3, 2000);
    h.stt.current.emit({ kind: 'interim', text: 'uh-huh', startMs: 6000, endMs: 6200 });
    expect(interruptions()).toBe(4);
    h.media.speechEnd(6300);
    await waitUntil('the reply played out', listeningAfter(h, 1), 8000);
    expect(lines(h.log.slice(before))).toEqual([
      'vad speech_start',
      'interruption paused',
      'vad speech_end',
      'interruption resumed',
      'vad speech_start',
      'interruption paused',
      'transcript caller interim',
      'interruption resumed',
      'vad speech_end',
      'transcript bot final',
      'bot_status listening',
    ]);
    const paused = { event: 'paused', decidedAtMonoMs: expect.any(Number) };
    const resumed = { event: 'resumed', falseInterruption: true, decidedAtMonoMs: expect.any(Number) };
    expect(dataOf(h.log, 'interruption')).toEqual([paused, resumed, paused, resumed]);
    expect(dataOf(h.log, 'transcript').at(-1)).toEqual({ segmentId: 'c1:bot:1', speaker: 'bot', text, final: true, turnId: 1 });
    expect(h.transport.audibleFrames).toBeGreaterThan(audible);
    expect(h.transport.states).toEqual(['thinking', 'speaking', 'listening']);
  });

  it('says the fallback reply when the LLM fails, and stays silent when speech synthesis fails', async () => {
    const failing: ScriptedReply = () => {
      throw new LlmFailedError('upstream 500', { upstreamStatus: 500, retryable: true });
    };
    const h = setup({ replies: [failing] });
    callerTurn(h, 1, 'Where is my load?', 1000, 2000);
    await waitUntil('the fallback played out', listeningAfter(h, 1));
    expect(lines(h.log).slice(3)).toEqual(['turn user_turn_complete', 'bot_status thinking', 'error llm VE_LLM_FAILED', 'bot_status speaking', 'latency', 'transcript bot final', 'bot_status listening']);
    expect(dataOf(h.log, 'error')).toEqual([{ stage: 'llm', code: 'VE_LLM_FAILED', message: 'upstream 500', retryable: true }]);
    expect(dataOf(h.log, 'latency')[0].stagesMs).toEqual({ endOfUtterance: expect.any(Number), sttFinal: expect.any(Number), llmFirstToken: null, ttsFirstByte: expect.any(Number) });
    expect(dataOf(h.log, 'transcript').at(-1)).toEqual({ segmentId: 'c1:bot:1', speaker: 'bot', text: DEFAULT_VOICE_CALL_SETTINGS.fallbackReply, final: true, turnId: 1 });

    const brokenTts: TextToSpeech = {
      label: 'broken-tts',
      sampleRate: 24_000,
      // eslint-disable-next-line require-yield
      async *synthesize(): AsyncGenerator<TtsAudio> {
        throw new TtsFailedError('tts 503', { upstreamStatus: 503, retryable: true });
      },
    };
    const t = setup({ replies: [ScriptedLlm.text('It is on its way.')], tts: brokenTts });
    callerTurn(t, 1, 'Where is my load?', 1000, 2000);
    await waitUntil('back to listening', listeningAfter(t, 1));
    expect(lines(t.log).slice(3)).toEqual(['turn user_turn_complete', 'bot_status thinking', 'error tts VE_TTS_FAILED', 'bot_status listening']);
    expect(dataOf(t.log, 'error')).toEqual([{ stage: 'tts', code: 'VE_TTS_FAILED', message: 'tts 503', retryable: true }]);
    callerTurn(t, 2, 'Hello?', 3000, 3500);
    await waitUntil('the second turn', () => t.llm.requests.length === 2);
    expect(t.llm.requests[1].messages.slice(1)).toEqual([{ role: 'user', content: 'Where is my load? Hello?' }]);
  });

  it('tells the caller once when the recogniser is down, and answers the turn when it is back', async () => {
    const h = setup({ replies: [ScriptedLlm.text('It is on its way.')] });
    h.stt.current.unavailable(new SttUnavailableError('recogniser unreachable'));
    h.media.speechStart(1000);
    h.media.speechEnd(2000);
    h.media.turnComplete(1, { speechEndMs: 2000, decidedAtMs: 2200 });
    await waitUntil('the notice played out', listeningAfter(h, 1));
    // A second turn in the same outage: no second notice.
    h.media.speechStart(3000);
    h.media.speechEnd(3600);
    h.media.turnComplete(2, { speechEndMs: 3600, decidedAtMs: 3800 });
    await new Promise((r) => setTimeout(r, 100));
    expect(lines(h.log)).toEqual([
      'error stt VE_STT_UNAVAILABLE',
      'vad speech_start',
      'vad speech_end',
      'turn user_turn_complete',
      'bot_status speaking',
      'transcript bot final',
      'bot_status listening',
      'vad speech_start',
      'vad speech_end',
      'turn user_turn_complete',
    ]);
    expect(dataOf(h.log, 'error')).toEqual([{ stage: 'stt', code: 'VE_STT_UNAVAILABLE', message: 'recogniser unreachable', retryable: true, recovered: false }]);
    expect(dataOf(h.log, 'transcript')).toEqual([{ segmentId: 'c1:bot:1', speaker: 'bot', text: DEFAULT_VOICE_CALL_SETTINGS.sttOutageNotice, final: true, turnId: 1 }]);
    expect(h.llm.requests).toHaveLength(0);

    const before = h.log.length;
    h.stt.current.reconnected(1500.4);
    h.stt.current.emit({ kind: 'final', text: 'Where is my load?', startMs: 3000, endMs: 3500 });
    await waitUntil('the answer played out', listeningAfter(h, 2));
    expect(lines(h.log.slice(before))).toEqual(['error stt VE_STT_RECONNECTED', 'transcript caller final', 'bot_status thinking', 'bot_status speaking', 'latency', 'transcript bot final', 'bot_status listening']);
    expect(dataOf(h.log, 'error')[1]).toEqual({ stage: 'stt', code: 'VE_STT_RECONNECTED', message: 'recogniser reconnected', recovered: true, downMs: 1500 });
    expect(dataOf(h.log, 'latency')[0]).toMatchObject({ turnId: 2 });
    // The notice is no part of the conversation.
    expect(h.llm.requests[0].messages.slice(1)).toEqual([{ role: 'user', content: 'Where is my load?' }]);
  });

  it('ends the call when the recogniser gives up for good', () => {
    const h = setup({ replies: [] });
    h.stt.current.fail(new SttDisconnectedError('recogniser gone'));
    expect(h.log.map((e) => [e.type, e.data])).toEqual([
      ['error', { stage: 'stt', code: 'VE_STT_DISCONNECTED', message: 'recogniser gone', retryable: true }],
      ['end_call_requested', { reason: 'stt_unavailable' }],
    ]);
  });

  it('in transcriber mode transcribes without answering; switching stops the reply being prepared', async () => {
    const h = setup({ replies: [ScriptedLlm.text('It is on its way.')], llmChunkDelayMs: 400 });
    callerTurn(h, 1, 'Where is my load?', 1000, 2000);
    await waitUntil('thinking', () => h.call.botState === 'thinking');
    h.call.setMode('transcriber');
    h.call.setMode('transcriber');
    expect(h.call.mode).toBe('transcriber');
    // The reply's utterance is open from `thinking` on, so it is stopped as an interruption with nothing heard.
    expect(lines(h.log).slice(4)).toEqual(['bot_status thinking', 'interruption interrupted', 'bot_status listening', 'bot_mode transcriber']);
    expect(dataOf(h.log, 'interruption')).toEqual([{ event: 'interrupted', turnId: 1, playedMs: 0, heardText: '', decidedAtMonoMs: expect.any(Number) }]);
    expect(dataOf(h.log, 'bot_mode')).toEqual([{ mode: 'transcriber' }]);

    const before = h.log.length;
    callerTurn(h, 2, 'Are you there?', 3000, 3500);
    await new Promise((r) => setTimeout(r, 600));
    expect(lines(h.log.slice(before))).toEqual(['vad speech_start', 'vad speech_end', 'transcript caller final', 'turn user_turn_complete']);
    expect(h.llm.requests).toHaveLength(1);
    expect(h.transport.audibleFrames).toBe(0);
    expect(h.transport.states).toEqual(['thinking', 'listening']);

    h.call.setMode('active');
    expect(dataOf(h.log, 'bot_mode')).toEqual([{ mode: 'transcriber' }, { mode: 'active' }]);
  });

  it('drops the reply being prepared when the caller goes on with words, and answers the whole turn', async () => {
    const h = setup({ replies: [ScriptedLlm.text('It is on its way.')], llmChunkDelayMs: 300 });
    callerTurn(h, 1, 'Where is', 1000, 2000);
    await waitUntil('thinking', () => h.call.botState === 'thinking');
    const before = h.log.length;
    h.media.speechStart(2500);
    h.media.speechEnd(3000);
    h.stt.current.emit({ kind: 'final', text: 'my load?', startMs: 2500, endMs: 2900 });
    h.media.turnComplete(2, { speechEndMs: 3000, decidedAtMs: 3200 });
    await waitUntil('the answer played out', listeningAfter(h, 2));
    expect(lines(h.log.slice(before))).toEqual([
      'vad speech_start',
      'vad speech_end',
      'transcript caller final',
      'interruption interrupted',
      'bot_status listening',
      'turn user_turn_complete',
      'bot_status thinking',
      'bot_status speaking',
      'latency',
      'transcript bot final',
      'bot_status listening',
    ]);
    expect(dataOf(h.log, 'interruption')).toEqual([{ event: 'interrupted', turnId: 1, playedMs: 0, heardText: '', decidedAtMonoMs: expect.any(Number) }]);
    expect(h.llm.requests[1].messages.slice(1)).toEqual([{ role: 'user', content: 'Where is my load?' }]);
    expect(dataOf(h.log, 'transcript').at(-1)).toMatchObject({ segmentId: 'c1:bot:2', turnId: 2, text: 'It is on its way.' });
  });

  it('hands off with the transfer reply, and ends the call after the goodbye', async () => {
    const transfer = setup({ replies: [[{ type: 'tool_call', call: { id: 't1', name: 'transfer_to_human', argumentsJson: '{"reason":"wants a person"}' } }], ScriptedLlm.text('Ok.')] });
    callerTurn(transfer, 1, 'Give me a person.', 1000, 2000);
    await waitUntil('the transfer reply played out', listeningAfter(transfer, 1));
    expect(lines(transfer.log).slice(3)).toEqual(['turn user_turn_complete', 'bot_status thinking', 'bot_status speaking', 'latency', 'handoff_requested', 'transcript bot final', 'bot_status listening']);
    expect(dataOf(transfer.log, 'handoff_requested')).toEqual([{ reason: 'wants a person', turnId: 1 }]);
    expect(dataOf(transfer.log, 'transcript').at(-1)?.text).toBe(DEFAULT_VOICE_CALL_SETTINGS.transferReply);
    callerTurn(transfer, 2, 'Thanks.', 4000, 4500);
    await waitUntil('the second request', () => transfer.llm.requests.length === 2);
    expect(transfer.llm.requests[1].messages.slice(1)).toEqual([
      { role: 'user', content: 'Give me a person.' },
      { role: 'tool', content: 'transfer started', toolCallId: 't1' },
      { role: 'assistant', content: DEFAULT_VOICE_CALL_SETTINGS.transferReply, toolCalls: [{ id: 't1', name: 'transfer_to_human', argumentsJson: '{"reason":"wants a person"}' }] },
      { role: 'user', content: 'Thanks.' },
    ]);

    const end = setup({ replies: [[{ type: 'text', text: 'Bye now.' }, { type: 'tool_call', call: { id: 'e1', name: 'end_call', argumentsJson: '{}' } }]] });
    callerTurn(end, 1, "That's all.", 1000, 2000);
    await waitUntil('the goodbye played out', () => end.log.some((e) => e.type === 'end_call_requested'));
    expect(lines(end.log).slice(3)).toEqual(['turn user_turn_complete', 'bot_status thinking', 'bot_status speaking', 'latency', 'transcript bot final', 'bot_status listening', 'end_call_requested']);
    expect(dataOf(end.log, 'end_call_requested')).toEqual([{ reason: 'bot_ended', turnId: 1 }]);
    // The LLM said its own goodbye: the default one is not added.
    expect(end.tts.texts).toEqual(['Bye now.']);
  });

  it('reports media events and closes idempotently', async () => {
    const h = setup({ replies: [] });
    h.media.emit({ type: 'user_started_speaking', turnId: 3, offsetSamples: 16_000, resumed: false });
    h.media.emit({ type: 'user_paused', turnId: 3, offsetSamples: 32_000 });
    h.media.emit({ type: 'smart_turn_result', turnId: 3, requestId: 1, probability: 0.2, complete: false });
    h.media.emit({ type: 'worker_restarted', fromWorkerId: 1, toWorkerId: 2, reason: 'crash' });
    h.media.emit({ type: 'smart_turn_error', code: 'VE_SMART_TURN_FAILED', message: 'model failed' });
    h.media.emit({ type: 'input_overflow', droppedSamples: 320 });
    h.media.emit({ type: 'vad_probability', endSamples: 512, probability: 0.1 });
    h.media.emit({ type: 'media_failed', code: 'VE_MEDIA_CRASHED', message: 'worker died', reason: 'media_crashed' });
    expect(h.log.map((e) => [e.type, e.data])).toEqual([
      ['turn', { event: 'user_started_speaking', turnId: 3, offsetMs: 1000 }],
      ['turn', { event: 'user_paused', turnId: 3, offsetMs: 2000 }],
      ['turn', { event: 'smart_turn_result', turnId: 3, probability: 0.2, complete: false }],
      ['worker_restarted', { fromWorkerId: 1, toWorkerId: 2, reason: 'crash' }],
      ['error', { stage: 'smart_turn', code: 'VE_SMART_TURN_FAILED', message: 'model failed', recovered: true }],
      ['error', { stage: 'media', code: 'VE_INPUT_OVERFLOW', droppedSamples: 320, recovered: true }],
      ['error', { stage: 'media', code: 'VE_MEDIA_CRASHED', message: 'worker died', recovered: false }],
      ['end_call_requested', { reason: 'media_crashed' }],
    ]);
    await h.call.close();
    await h.call.close();
    expect(h.stt.current.closed).toBe(true);
    h.call.handleCallerAudio(new Int16Array(320));
    expect(h.media.writtenSamples).toBe(0);
  });
});
