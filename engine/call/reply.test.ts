import { beforeAll, describe, expect, it } from 'vitest';
import { LlmTimeoutError, TtsFailedError } from '../providers/errors.ts';
import type { VoiceError } from '../errors.ts';
import { loadResamplerModule } from '../stages/resampler.ts';
import type { PlayoutScheduler } from '../transport/playout-clock.ts';
import type { TextToSpeech, TtsAudio } from '../providers/tts.ts';
import { ScriptedLlm, ToneTts } from '../../test/fakes/providers.ts';
import { BotOutput } from './bot-output.ts';
import { Reply, type ReplyFields } from './reply.ts';

const SINK_RATE = 48_000;

beforeAll(async () => {
  await loadResamplerModule();
});

/** A reply into an output whose playout the test never runs: only what is written counts. */
function reply(tts: TextToSpeech, fields: Partial<ReplyFields> = {}) {
  const clock: PlayoutScheduler = { start: () => {}, stop: () => {} };
  const output = new BotOutput({ sampleRate: SINK_RATE, frameSamples: 480, sendFrame: () => {} }, { onFirstAudio: () => {}, onPlayedOut: () => {} }, { clock, ringMs: 10_000 });
  output.beginUtterance(1);
  const r = new Reply({ id: 1, turnId: 7, callerStoppedAt: 1000, marks: { decidedAt: 1200 }, probability: 0.8, rule: 'model', tts, output, ...fields });
  return { r, output };
}

describe('Reply', () => {
  it('speaks the LLM text sentence by sentence, each with its span of audio, and keeps tool calls', async () => {
    const tts = new ToneTts({ msPerChar: 10 });
    const { r } = reply(tts);
    const llm = new ScriptedLlm([[...ScriptedLlm.text('First one. Second one here.'), { type: 'tool_call', call: { id: 'x', name: 'end_call', argumentsJson: '{}' } }]]);
    const errors: string[] = [];
    let afterText = 0;
    await r.answer({ llm, messages: [], tools: [], timeoutMs: 1000, fallbackReply: 'Sorry.', afterText: async () => void afterText++, onError: (stage) => void errors.push(stage) });
    expect(tts.texts).toEqual(['First one.', 'Second one here.']);
    expect(r.sentences).toEqual([
      { text: 'First one.', startSample: 0, endSample: 10 * 10 * 48 },
      { text: 'Second one here.', startSample: 4800, endSample: 4800 + 16 * 10 * 48 },
    ]);
    expect(r.text).toBe('First one. Second one here.');
    expect(r.toolCalls).toEqual([{ id: 'x', name: 'end_call', argumentsJson: '{}' }]);
    expect(afterText).toBe(1);
    expect(errors).toEqual([]);
    expect(r.marks.llmFirstTokenAt).toEqual(expect.any(Number));
    expect(r.marks.ttsFirstByteAt).toEqual(expect.any(Number));
  });

  it('says the fallback when the LLM fails before any sentence, and reports each failure once', async () => {
    const tts = new ToneTts({ msPerChar: 1 });
    const { r } = reply(tts);
    const llm = new ScriptedLlm([
      () => {
        throw new LlmTimeoutError(1000);
      },
    ]);
    const errors: Array<[string, string]> = [];
    await r.answer({ llm, messages: [], tools: [], timeoutMs: 1000, fallbackReply: 'Sorry.', afterText: async () => {}, onError: (stage, e) => void errors.push([stage, e.code]) });
    expect(errors).toEqual([['llm', 'VE_LLM_TIMEOUT']]);
    expect(r.text).toBe('Sorry.');

    const failing: TextToSpeech = {
      label: 'failing',
      sampleRate: 24_000,
      // eslint-disable-next-line require-yield
      async *synthesize(): AsyncGenerator<TtsAudio> {
        throw new TtsFailedError('down', { retryable: true });
      },
    };
    const broken = reply(failing).r;
    const seen: VoiceError[] = [];
    await broken.answer({ llm: new ScriptedLlm([ScriptedLlm.text('Hello there.')]), messages: [], tools: [], timeoutMs: 1000, fallbackReply: 'Sorry.', afterText: async () => {}, onError: (_, e) => void seen.push(e) });
    expect(seen.map((e) => e.code)).toEqual(['VE_TTS_FAILED']);
    expect(broken.sentences).toEqual([]);
  });

  it('reports nothing once cancelled', async () => {
    const { r } = reply(new ToneTts({ msPerChar: 1 }));
    const errors: string[] = [];
    const answering = r.answer({
      llm: new ScriptedLlm([ScriptedLlm.text('One two three four.')], { chunkDelayMs: 50 }),
      messages: [],
      tools: [],
      timeoutMs: 1000,
      fallbackReply: 'Sorry.',
      afterText: async () => {},
      onError: (stage) => void errors.push(stage),
    });
    r.abort.abort();
    await answering;
    expect(r.aborted).toBe(true);
    expect(errors).toEqual([]);
    expect(r.sentences).toEqual([]);
  });

  it('gives the sentence still being synthesised a slow-speech end, so that its words lag the audio', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow: TextToSpeech = {
      label: 'slow',
      sampleRate: SINK_RATE,
      async *synthesize(): AsyncGenerator<TtsAudio> {
        yield { pcm: new Int16Array(4800).fill(1000), sampleRate: SINK_RATE };
        await held;
      },
    };
    const { r } = reply(slow);
    r.sentences.push({ text: 'Done.', startSample: 0, endSample: 4800 });
    r.writtenSamples = 4800;
    const speaking = r.speak('Eleven char');
    await new Promise((resolve) => setTimeout(resolve, 20));
    // 11 characters at 11 a second: 1 s of audio expected, though only 100 ms is written so far.
    expect(r.timedSentences()).toEqual([
      { text: 'Done.', startSample: 0, endSample: 4800 },
      { text: 'Eleven char', startSample: 4800, endSample: 4800 + SINK_RATE },
    ]);
    expect(r.heard(4800)).toBe('Done.');
    expect(r.heard(4800 + SINK_RATE / 2)).toBe('Done. Eleven…');
    release();
    await speaking;
    expect(r.timedSentences()).toEqual([
      { text: 'Done.', startSample: 0, endSample: 4800 },
      { text: 'Eleven char', startSample: 4800, endSample: 9600 },
    ]);
  });

  it('builds its latency event from its marks, relative to the end of the caller speech', () => {
    const { r } = reply(new ToneTts(), { marks: { decidedAt: 1200, sttFinalAt: 1250, llmFirstTokenAt: 1500, ttsFirstByteAt: 1600, firstAudioAt: 1620 } });
    expect(r.latency()).toEqual({
      turnId: 7,
      responseMs: 620,
      stagesMs: { endOfUtterance: 200, sttFinal: 250, llmFirstToken: 300, ttsFirstByte: 100 },
      smartTurn: { probability: 0.8, rule: 'model' },
    });
    const notice = reply(new ToneTts(), { marks: { decidedAt: 1000 }, probability: null, rule: null }).r;
    expect(notice.latency()).toEqual({
      turnId: 7,
      responseMs: null,
      stagesMs: { endOfUtterance: 0, sttFinal: null, llmFirstToken: null, ttsFirstByte: null },
      smartTurn: { probability: null, rule: 'silence' },
    });
  });
});
