import type { VoiceError } from '../../engine/errors.ts';
import { ProviderAbortedError } from '../../engine/providers/errors.ts';
import type { ChatMessage, LanguageModel, LlmChunk, LlmRequest, ToolSpec } from '../../engine/providers/llm.ts';
import type { SpeechToText, SttEndOfSpeech, SttStream, SttStreamOptions, TranscriptResult } from '../../engine/providers/stt.ts';
import type { TextToSpeech, TtsAudio } from '../../engine/providers/tts.ts';
import { delay } from '../../engine/providers/local/net.ts';

/**
 * In-process providers for unit tests of the engine ("these frames in, these events out") that need
 * no server at all. They follow the contracts exactly, including abort and error behaviour.
 */

/** A speech-to-text whose results the test emits by hand. */
export class ScriptedStt implements SpeechToText {
  readonly label = 'scripted-stt';
  readonly streams: ScriptedSttStream[] = [];

  stream(opts: SttStreamOptions): ScriptedSttStream {
    const s = new ScriptedSttStream(opts);
    this.streams.push(s);
    return s;
  }

  /** The most recently opened stream. */
  get current(): ScriptedSttStream {
    const s = this.streams.at(-1);
    if (s === undefined) throw new Error('no STT stream was opened');
    return s;
  }
}

export class ScriptedSttStream implements SttStream {
  pushedSamples = 0;
  /** Samples of each `pushAudio` message, in order. */
  readonly batches: number[] = [];
  finalizeCalls = 0;
  closed = false;
  private readonly opts: SttStreamOptions;

  constructor(opts: SttStreamOptions) {
    this.opts = opts;
  }

  get sampleRate(): number {
    return this.opts.sampleRate;
  }

  pushAudio(pcm: Int16Array): void {
    if (this.closed) return;
    this.pushedSamples += pcm.length;
    this.batches.push(pcm.length);
  }

  finalize(): void {
    this.finalizeCalls++;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Deliver a result as the provider would. */
  emit(result: Partial<TranscriptResult> & { text: string }): void {
    this.opts.onResult({ kind: 'final', startMs: 0, endMs: 0, confidence: 1, speechFinal: result.kind !== 'interim', ...result });
  }

  /** The recogniser's own end-of-speech signal (Deepgram speech_final / UtteranceEnd), as the provider would send it. */
  endOfSpeech(signal: SttEndOfSpeech): void {
    this.opts.onEndOfSpeech?.(signal);
  }

  fail(error: VoiceError): void {
    this.closed = true;
    this.opts.onError(error);
  }

  unavailable(error: VoiceError): void {
    this.opts.onUnavailable?.(error);
  }

  reconnected(downMs = 0): void {
    this.opts.onReconnected?.(downMs);
  }
}

/** One scripted reply: fixed chunks, or a function of the request. `done` is appended when missing. */
export type ScriptedReply = LlmChunk[] | ((req: { messages: ChatMessage[]; tools: ToolSpec[] }) => LlmChunk[]);

/** A language model that plays back scripted replies in order (the last one repeats). */
export class ScriptedLlm implements LanguageModel {
  readonly label = 'scripted-llm';
  readonly requests: Array<{ messages: ChatMessage[]; tools: ToolSpec[] }> = [];
  private readonly replies: ScriptedReply[];
  private readonly chunkDelayMs: number;

  constructor(replies: ScriptedReply[], options: { chunkDelayMs?: number } = {}) {
    this.replies = replies;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
  }

  /** A reply that streams `text` word by word. */
  static text(text: string): LlmChunk[] {
    return (text.match(/\s*\S+/g) ?? []).map((t) => ({ type: 'text', text: t }));
  }

  async *complete(req: LlmRequest): AsyncGenerator<LlmChunk> {
    const request = { messages: structuredClone(req.messages), tools: req.tools ?? [] };
    this.requests.push(request);
    const script = this.replies[Math.min(this.requests.length - 1, this.replies.length - 1)] ?? [];
    const chunks = typeof script === 'function' ? script(request) : script;
    for (const chunk of chunks) {
      await this.wait(req.signal);
      yield chunk;
      if (chunk.type === 'done') return;
    }
    await this.wait(req.signal);
    yield { type: 'done' };
  }

  private async wait(signal: AbortSignal): Promise<void> {
    try {
      await delay(this.chunkDelayMs, signal);
    } catch (cause) {
      throw new ProviderAbortedError('language model request', { cause });
    }
  }
}

/**
 * A text-to-speech that answers with a sine tone, `msPerChar` long per character, in 20 ms pieces:
 * audible to a VAD, cheap, and its length tells which text it spoke.
 */
export class ToneTts implements TextToSpeech {
  readonly label = 'tone-tts';
  readonly sampleRate: number;
  readonly texts: string[] = [];
  private readonly msPerChar: number;
  private readonly chunkDelayMs: number;
  private readonly pieceMs: number;

  /**
   * `pieceMs`: audio per chunk. The bot's output sends a chunk that arrives while it has nothing
   * buffered at once, so replies made of 20 ms pieces synthesised faster than real time go out faster
   * than real time too; pieces longer than its 40 ms lead play at real-time pace.
   */
  constructor(options: { sampleRate?: number; msPerChar?: number; chunkDelayMs?: number; pieceMs?: number } = {}) {
    this.sampleRate = options.sampleRate ?? 24000;
    this.msPerChar = options.msPerChar ?? 50;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
    this.pieceMs = options.pieceMs ?? 20;
  }

  async *synthesize(text: string, opts: { signal: AbortSignal }): AsyncGenerator<TtsAudio> {
    this.texts.push(text);
    const total = Math.round((text.length * this.msPerChar * this.sampleRate) / 1000);
    const piece = Math.round((this.sampleRate * this.pieceMs) / 1000);
    for (let start = 0; start < total; start += piece) {
      try {
        await delay(this.chunkDelayMs, opts.signal);
      } catch (cause) {
        throw new ProviderAbortedError('speech synthesis', { cause });
      }
      const pcm = new Int16Array(Math.min(piece, total - start));
      for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (start + i)) / this.sampleRate));
      yield { pcm, sampleRate: this.sampleRate };
    }
    if (opts.signal.aborted) throw new ProviderAbortedError('speech synthesis', { cause: opts.signal.reason });
  }
}
