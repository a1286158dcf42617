/**
 * One reply in flight: the LLM's text, sentence by sentence, synthesised into the bot's output under
 * one AbortController (cancelling it stops the LLM and the synthesis at once); the span of audio each
 * sentence took, from which a barge-in's heard text and the words shown in the room are computed; and
 * the marks of its turn's latency, from the end of the caller's speech to the reply's first audio.
 */
import type { VoiceError } from '../errors.ts';
import type { LatencyEventData, TurnRule } from '../events.ts';
import type { ChatMessage, LanguageModel, ToolCall, ToolSpec } from '../providers/llm.ts';
import { splitSentences } from '../providers/sentence-splitter.ts';
import type { TextToSpeech } from '../providers/tts.ts';
import type { BotOutput } from './bot-output.ts';
import { heardText } from './conversation.ts';

/** A sentence and its span of the reply's audio, at the output's sample rate. */
export interface TimedSentence {
  text: string;
  startSample: number;
  endSample: number;
}

/** performance.now() of each step of the turn this reply answers. */
export interface ReplyMarks {
  /** When the turn was decided (the reply began). */
  decidedAt: number;
  /** When the recogniser's last final of the turn arrived. */
  sttFinalAt?: number;
  llmFirstTokenAt?: number;
  ttsFirstByteAt?: number;
  firstAudioAt?: number;
}

export interface ReplyFields {
  id: number;
  turnId: number;
  /** Wall time (performance.now) when the caller stopped speaking. */
  callerStoppedAt: number;
  marks: ReplyMarks;
  probability: number | null;
  /** The rule that ended the turn this reply answers; null for a notice. */
  rule: TurnRule | null;
  /** A fixed notice to the caller (recogniser outage), not an answer: kept out of the conversation and the latencies. */
  notice?: boolean;
  /**
   * Fixed text said on request (the greeting, a `say`), not an answer: it enters the conversation
   * as the bot's words but has no turn latency.
   */
  scripted?: boolean;
  /** False: the caller's voice does not stop it (a `say` that must be heard out). Default true. */
  interruptible?: boolean;
  /** Where the reply's sentences are synthesised, and where their audio goes. */
  tts: TextToSpeech;
  output: BotOutput;
}

/** Slower than synthesised speech (about 15 characters a second); see `timedSentences`. */
const SLOW_SPEECH_CHARS_PER_S = 11;

export class Reply {
  readonly id: number;
  readonly turnId: number;
  readonly callerStoppedAt: number;
  readonly marks: ReplyMarks;
  readonly probability: number | null;
  readonly rule: TurnRule | null;
  readonly notice: boolean;
  readonly scripted: boolean;
  readonly interruptible: boolean;
  #tts: TextToSpeech;
  #output: BotOutput;
  readonly abort = new AbortController();
  readonly sentences: TimedSentence[] = [];
  readonly toolCalls: ToolCall[] = [];
  /** What the reply leads to once it has played: a handoff, or the end of the call. */
  after?: 'transfer' | 'end';
  writtenSamples = 0;
  /** The reply's words sent to the room so far: those whose audio has played. */
  spokenText = '';
  /** The sentence being synthesised, whose end is not known yet. */
  #synthesising: { text: string; startSample: number } | null = null;

  constructor(fields: ReplyFields) {
    this.id = fields.id;
    this.turnId = fields.turnId;
    this.callerStoppedAt = fields.callerStoppedAt;
    this.marks = fields.marks;
    this.probability = fields.probability;
    this.rule = fields.rule;
    this.notice = fields.notice ?? false;
    this.scripted = fields.scripted ?? false;
    this.interruptible = fields.interruptible ?? true;
    this.#tts = fields.tts;
    this.#output = fields.output;
  }

  get aborted(): boolean {
    return this.abort.signal.aborted;
  }

  /** The sentences synthesised in full, as one text. */
  get text(): string {
    return this.sentences.map((s) => s.text).join(' ');
  }

  /**
   * Speaks the LLM's answer to `messages`, each sentence synthesised as soon as the LLM has written it,
   * then runs `afterText` (the tool calls). A failure is reported through `onError` unless the reply
   * was cancelled; when the LLM fails before the reply said anything, `fallbackReply` is said instead.
   */
  async answer(opts: {
    llm: LanguageModel;
    messages: ChatMessage[];
    tools: ToolSpec[];
    timeoutMs: number;
    fallbackReply: string;
    afterText(): Promise<void>;
    onError(stage: 'llm' | 'tts', error: VoiceError): void;
  }): Promise<void> {
    let stage: 'llm' | 'tts' = 'llm';
    try {
      for await (const sentence of splitSentences(this.llmText(opts.llm, opts))) {
        stage = 'tts';
        await this.speak(sentence);
        stage = 'llm';
      }
      await opts.afterText();
    } catch (error) {
      if (this.aborted) return;
      opts.onError(stage, error as VoiceError);
      if (stage === 'llm' && this.sentences.length === 0) {
        try {
          await this.speak(opts.fallbackReply);
        } catch (ttsError) {
          if (!this.aborted) opts.onError('tts', ttsError as VoiceError);
        }
      }
    }
  }

  /** The LLM's text as it streams; its tool calls are kept in `toolCalls`. */
  async *llmText(llm: LanguageModel, request: { messages: ChatMessage[]; tools: ToolSpec[]; timeoutMs: number }): AsyncGenerator<string> {
    const stream = llm.complete({ messages: request.messages, tools: request.tools, signal: this.abort.signal, timeoutMs: request.timeoutMs });
    for await (const chunk of stream) {
      if (chunk.type === 'text') {
        this.marks.llmFirstTokenAt ??= performance.now();
        yield chunk.text;
      } else if (chunk.type === 'tool_call') {
        this.marks.llmFirstTokenAt ??= performance.now();
        this.toolCalls.push(chunk.call);
      }
    }
  }

  /** Synthesises one sentence into the output; it counts as said once all its audio is written. */
  async speak(sentence: string): Promise<void> {
    const output = this.#output;
    const startSample = this.writtenSamples;
    this.#synthesising = { text: sentence, startSample };
    try {
      for await (const audio of this.#tts.synthesize(sentence, { signal: this.abort.signal })) {
        this.marks.ttsFirstByteAt ??= performance.now();
        if (!(await output.write(this.id, audio.pcm, audio.sampleRate))) return;
        this.writtenSamples += Math.round((audio.pcm.length * output.sink.sampleRate) / audio.sampleRate);
      }
      this.sentences.push({ text: sentence, startSample, endSample: this.writtenSamples });
    } finally {
      if (this.#synthesising?.startSample === startSample) this.#synthesising = null;
    }
  }

  /**
   * The reply's sentences with their spans of audio. The one still being synthesised (the output ring
   * holds 2 s, so a long sentence starts playing well before its synthesis ends) gets an end estimated
   * at a slow speaking rate, so that its words lag its audio rather than lead it, as agents-js paces
   * words at a standard rate when the TTS gives no timings.
   */
  timedSentences(): TimedSentence[] {
    const open = this.#synthesising;
    if (!open) return this.sentences;
    const estimatedEnd = open.startSample + Math.round((open.text.length / SLOW_SPEECH_CHARS_PER_S) * this.#output.sink.sampleRate);
    return [...this.sentences, { ...open, endSample: Math.max(this.writtenSamples, estimatedEnd) }];
  }

  /** Samples of the reply's audio sent to the room so far. */
  playedSamples(): number {
    return this.#output.playedSamples(this.id);
  }

  /** What the caller heard of the reply when it was cut after `playedSamples`. */
  heard(playedSamples: number): string {
    return heardText(this.timedSentences(), playedSamples);
  }

  /** The `latency` event of the reply's turn, once its first audio went out. */
  latency(): LatencyEventData {
    const m = this.marks;
    const since = (t: number | undefined) => (t === undefined ? null : Math.round(t - this.callerStoppedAt));
    return {
      turnId: this.turnId,
      responseMs: since(m.firstAudioAt),
      stagesMs: {
        endOfUtterance: since(m.decidedAt),
        sttFinal: since(m.sttFinalAt),
        llmFirstToken: m.llmFirstTokenAt === undefined ? null : Math.round(m.llmFirstTokenAt - m.decidedAt),
        ttsFirstByte: m.ttsFirstByteAt === undefined ? null : Math.round(m.ttsFirstByteAt - (m.llmFirstTokenAt ?? m.decidedAt)),
      },
      smartTurn: { probability: this.probability, rule: this.rule ?? 'silence' },
    };
  }
}
