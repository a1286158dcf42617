/**
 * One AI voice call: caller audio to the media core and the recogniser; turn decisions to the LLM; its
 * reply, sentence by sentence, to speech synthesis and out to the room; barge-in on top. Depends on
 * provider contracts and the transport contract only.
 */
import type { CallAudio, MediaEvent } from '../call-audio.ts';
import type { SpeechToText, SttStream, TranscriptResult } from '../providers/stt.ts';
import type { LanguageModel, ToolCall, ToolSpec } from '../providers/llm.ts';
import type { TextToSpeech } from '../providers/tts.ts';
import { splitSentences } from '../providers/sentence-splitter.ts';
import type { VoiceError } from '../errors.ts';
import { engineErrorCode } from '../error-codes.ts';
import type { BotMode, ErrorStage, TurnRule } from '../events.ts';
import type { BotState, CallTransport } from '../transport/call-transport.ts';
import { concatPcm } from '../pcm.ts';
import { BotOutput } from './bot-output.ts';
import { CallEvents } from './call-events.ts';
import { Conversation, heardText, spokenSoFar } from './conversation.ts';
import { InterruptionPolicy, type InterruptionSettings } from './interruption-policy.ts';

export interface VoiceCallSettings {
  instructions: string;
  interruption: Partial<InterruptionSettings>;
  /** After a turn decision, how long to wait for the recogniser's final words. */
  sttFinalWaitMs: number;
  /** First-token deadline of the LLM. */
  llmTimeoutMs: number;
  /** Spoken when the LLM fails or times out. */
  fallbackReply: string;
  transferReply: string;
  goodbyeReply: string;
  /**
   * How long the recogniser may stay unreachable (reconnecting with backoff meanwhile) before the call
   * ends with reason `stt_unavailable`: a call that cannot hear must not go on silently.
   */
  sttOutageMaxMs: number;
  /** Said, once per outage, when the caller ends a turn while the recogniser is unreachable. */
  sttOutageNotice: string;
}

export const DEFAULT_VOICE_CALL_SETTINGS: VoiceCallSettings = {
  instructions:
    'You are the voice assistant of a dispatch company. Drivers call you about loads, delays and problems on the road. Answer in one or two short spoken sentences. Use transfer_to_human when the driver asks for a person or the problem needs one, and end_call when the driver is done.',
  interruption: {},
  sttFinalWaitMs: 1500,
  llmTimeoutMs: 5000,
  fallbackReply: "Sorry, I'm having trouble right now. Could you say that again?",
  transferReply: 'Let me connect you with a colleague.',
  goodbyeReply: 'Goodbye, drive safely.',
  sttOutageMaxMs: 60_000,
  sttOutageNotice: "Sorry, I can't hear you well right now, one moment.",
};

export const CALL_TOOLS: ToolSpec[] = [
  {
    name: 'transfer_to_human',
    description: 'Hand the call to a human dispatcher.',
    parameters: { type: 'object', properties: { reason: { type: 'string' } }, required: [] },
  },
  {
    name: 'end_call',
    description: 'End the call once the caller is done.',
    parameters: { type: 'object', properties: {}, required: [] },
  },
];


interface Reply {
  id: number;
  turnId: number;
  abort: AbortController;
  sentences: Array<{ text: string; startSample: number; endSample: number }>;
  /** The sentence being synthesised, whose end is not known yet. */
  synthesising: { text: string; startSample: number } | null;
  writtenSamples: number;
  /** The reply's words sent to the room so far: those whose audio has played. */
  spokenText: string;
  toolCalls: ToolCall[];
  /** Wall time (performance.now) when the caller stopped speaking. */
  callerStoppedAt: number;
  marks: { decidedAt: number; sttFinalAt?: number; llmFirstTokenAt?: number; ttsFirstByteAt?: number; firstAudioAt?: number };
  probability: number | null;
  /** The rule that ended the turn this reply answers; null for a notice. */
  rule: TurnRule | null;
  after?: 'transfer' | 'end';
  /** A fixed notice to the caller (recogniser outage), not an answer: kept out of the conversation and the latencies. */
  notice?: boolean;
}

/** A turn that ended while the recogniser was unreachable; answered once it is back. */
interface UnansweredTurn {
  turnId: number;
  probability: number | null;
  rule: TurnRule;
}

const POLICY_TICK_MS = 50;
/** Recogniser message length while the caller speaks (VAD), and while they do not. */
const STT_BATCH_MS = 100;
const STT_IDLE_BATCH_MS = 400;
/** Slower than synthesised speech (about 15 characters a second); see #timedSentences. */
const SLOW_SPEECH_CHARS_PER_S = 11;

export class VoiceCall {
  readonly callId: string;
  readonly events: CallEvents;
  readonly settings: VoiceCallSettings;
  #media: CallAudio;
  #transport: CallTransport;
  #stt: SttStream;
  #llm: LanguageModel;
  #tts: TextToSpeech;
  #output: BotOutput;
  #conversation: Conversation;
  #policy: InterruptionPolicy;
  #mode: BotMode = 'active';
  #state: BotState = 'listening';
  #reply: Reply | null = null;
  #nextReplyId = 1;
  #callerSegment = 0;
  #turnText: string[] = [];
  #lastFinal: { endMs: number; at: number } | null = null;
  #finalWaiters: Array<() => void> = [];
  #callerStoppedAt = 0;
  #speechEndMs = 0;
  #ticker: NodeJS.Timeout;
  #closed = false;
  #onBotFrame: ((pcm: Int16Array) => void) | null = null;
  #sttBuffer: Int16Array[] = [];
  #sttBufferedSamples = 0;
  /** Between the VAD's speech_start and speech_end. */
  #callerSpeaking = false;
  /** The recogniser reported an outage and has not proved itself back yet. */
  #sttDown = false;
  #outageNoticeGiven = false;
  #unansweredTurn: UnansweredTurn | null = null;

  constructor(opts: {
    callId: string;
    media: CallAudio;
    transport: CallTransport;
    stt: SpeechToText;
    llm: LanguageModel;
    tts: TextToSpeech;
    settings?: Partial<VoiceCallSettings>;
    events?: CallEvents;
  }) {
    this.callId = opts.callId;
    this.settings = { ...DEFAULT_VOICE_CALL_SETTINGS, ...opts.settings };
    this.events = opts.events ?? new CallEvents(opts.callId);
    this.#media = opts.media;
    this.#transport = opts.transport;
    this.#llm = opts.llm;
    this.#tts = opts.tts;
    this.#conversation = new Conversation(this.settings.instructions);
    this.#policy = new InterruptionPolicy(this.settings.interruption);
    this.#output = new BotOutput(opts.transport.sink, {
      onFirstAudio: (id) => this.#onFirstAudio(id),
      onPlayedOut: (id) => this.#onPlayedOut(id),
      onFrame: (pcm) => this.#onBotFrame?.(pcm),
    });
    this.#stt = opts.stt.stream({
      sampleRate: opts.transport.callerSampleRate,
      maxOutageMs: this.settings.sttOutageMaxMs,
      onResult: (r) => this.#onTranscript(r),
      onEndOfSpeech: (signal) => this.#media.handleRecognizerEndOfSpeech(signal.lastWordEndMs),
      onError: (e) => this.#onSttLost(e),
      onUnavailable: (e) => this.#onSttDown(e),
      onReconnected: (downMs) => this.#onSttBack(downMs),
    });
    this.#media.onEvent((e) => this.#onMedia(e));
    this.#ticker = setInterval(() => this.#tick(), POLICY_TICK_MS);
    this.#ticker.unref();
  }

  get mode(): BotMode {
    return this.#mode;
  }

  get botState(): BotState {
    return this.#state;
  }

  /** One frame of the caller's microphone, from the transport. */
  handleCallerAudio(pcm: Int16Array): void {
    if (this.#closed) return;
    this.#media.writeCallerAudio(pcm);
    // The recogniser gets 100 ms messages while the caller speaks (within Deepgram's recommended 20-250
    // ms), flushed at once when they start and stop, and 400 ms messages of what the VAD calls silence:
    // one WebSocket send per 20 ms frame was a large share of the main thread at density (11 % of it with
    // 30 calls at 40 ms messages). Every sample is sent, in order; only the message size changes.
    this.#sttBuffer.push(pcm.slice());
    this.#sttBufferedSamples += pcm.length;
    const batchMs = this.#callerSpeaking ? STT_BATCH_MS : STT_IDLE_BATCH_MS;
    if (this.#sttBufferedSamples * 1000 >= batchMs * this.#transport.callerSampleRate) this.#flushStt();
  }

  #flushStt(): void {
    if (this.#sttBufferedSamples === 0) return;
    const batch = concatPcm(this.#sttBuffer);
    this.#sttBuffer = [];
    this.#sttBufferedSamples = 0;
    this.#stt.pushAudio(batch);
  }

  /** Taps the bot's outgoing frames (recording). */
  onBotFrame(listener: ((pcm: Int16Array) => void) | null): void {
    this.#onBotFrame = listener;
  }

  /** 'transcriber': the bot stays, silent, and only transcribes (a human took over). */
  setMode(mode: BotMode): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    if (mode === 'transcriber') this.#cancelReply('mode');
    this.events.emit('bot_mode', { mode });
  }

  // ---- caller side -------------------------------------------------------------------------------

  #onMedia(event: MediaEvent): void {
    switch (event.type) {
      case 'speech_start':
        this.#callerSpeaking = true;
        this.#flushStt();
        this.events.emit('vad', { event: 'speech_start', offsetMs: event.offsetSamples / 16 });
        if (this.#output.speaking && this.#mode === 'active') this.#decide(this.#policy.speechStarted(performance.now()));
        else if (this.#state === 'thinking') this.#cancelReply('caller_resumed');
        break;
      case 'speech_end':
        this.#callerSpeaking = false;
        this.#flushStt();
        this.#speechEndMs = event.offsetSamples / 16;
        this.#callerStoppedAt = performance.now() - (this.#media.processedSamples - event.offsetSamples) / 16;
        this.events.emit('vad', { event: 'speech_end', offsetMs: this.#speechEndMs });
        this.#decide(this.#policy.speechEnded(performance.now()));
        break;
      case 'user_started_speaking':
      case 'user_paused':
        this.events.emit('turn', { event: event.type, turnId: event.turnId, offsetMs: event.offsetSamples / 16 });
        break;
      case 'smart_turn_result':
        this.events.emit('turn', { event: 'smart_turn_result', turnId: event.turnId, probability: event.probability, complete: event.complete });
        break;
      case 'user_turn_complete':
        this.events.emit('turn', {
          event: 'user_turn_complete',
          turnId: event.turnId,
          probability: event.probability,
          rule: event.rule,
          speechEndMs: event.speechEndSamples / 16,
          decidedAtMs: event.decidedAtSamples / 16,
        });
        if (!this.#output.speaking) void this.#respond(event.turnId, event.probability, event.rule);
        break;
      case 'worker_restarted':
        this.events.emit('worker_restarted', { fromWorkerId: event.fromWorkerId, toWorkerId: event.toWorkerId, reason: event.reason });
        break;
      case 'smart_turn_error':
        this.events.emit('error', { stage: 'smart_turn', code: engineErrorCode(event), message: event.message, recovered: true });
        break;
      case 'input_overflow':
        this.events.emit('error', { stage: 'media', code: 'VE_INPUT_OVERFLOW', droppedSamples: event.droppedSamples, recovered: true });
        break;
      case 'media_failed':
        this.events.emit('error', { stage: 'media', code: engineErrorCode(event), message: event.message, recovered: false });
        this.events.emit('end_call_requested', { reason: event.reason });
        break;
      case 'vad_probability':
        break;
    }
  }

  #onTranscript(result: TranscriptResult): void {
    const segmentId = `${this.callId}:caller:${this.#callerSegment}`;
    if (result.text.trim() === '') return;
    this.events.emit('transcript', { segmentId, speaker: 'caller', text: result.text, startMs: result.startMs, endMs: result.endMs, final: result.kind === 'final' });
    void this.#transport.publishTranscript({ segmentId, speaker: 'caller', text: result.text, final: result.kind === 'final' }).catch(() => {});
    if (this.#output.speaking && this.#mode === 'active') this.#decide(this.#policy.words(result.text));
    if (result.kind !== 'final') return;
    this.#callerSegment++;
    this.#turnText.push(result.text.trim());
    this.#lastFinal = { endMs: result.endMs, at: performance.now() };
    for (const wake of this.#finalWaiters.splice(0)) wake();
  }

  /** Waits (bounded) until the recogniser's finals cover the speech that ended the turn. */
  async #collectUserText(): Promise<{ text: string; sttFinalAt?: number }> {
    const covered = () => this.#lastFinal !== null && this.#lastFinal.endMs >= this.#speechEndMs - 300 && this.#turnText.length > 0;
    if (!covered()) {
      this.#flushStt();
      this.#stt.finalize();
      const deadline = performance.now() + this.settings.sttFinalWaitMs;
      // No final can come while the recogniser is unreachable: do not keep the caller waiting for one.
      while (!covered() && performance.now() < deadline && !this.#closed && !this.#sttDown) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
          this.#finalWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
    const text = this.#turnText.join(' ').trim();
    this.#turnText = [];
    return { text, sttFinalAt: this.#lastFinal?.at };
  }

  // ---- bot side ----------------------------------------------------------------------------------

  async #respond(turnId: number, probability: number | null, rule: TurnRule): Promise<void> {
    if (this.#mode !== 'active' || this.#closed) return;
    const decidedAt = performance.now();
    const callerStoppedAt = this.#callerStoppedAt || decidedAt;
    this.#cancelReply('superseded');
    this.#unansweredTurn = null;
    const { text, sttFinalAt } = await this.#collectUserText();
    if (text === '' && this.#sttDown && !this.#closed && this.#mode === 'active') {
      // The caller said something nobody could hear: tell them once, answer when the recogniser is back.
      this.#unansweredTurn = { turnId, probability, rule };
      if (!this.#outageNoticeGiven) {
        this.#outageNoticeGiven = true;
        await this.#sayNotice(turnId, this.settings.sttOutageNotice);
      }
      return;
    }
    if (text === '' || this.#closed || this.#mode !== 'active') return;
    this.#conversation.addUser(text);
    const reply = this.#newReply({ turnId, callerStoppedAt, marks: { decidedAt, sttFinalAt }, probability, rule });
    this.#reply = reply;
    this.#setState('thinking');
    this.#output.beginUtterance(reply.id);
    let stage: 'llm' | 'tts' = 'llm';
    try {
      for await (const sentence of splitSentences(this.#llmText(reply))) {
        stage = 'tts';
        await this.#speak(reply, sentence);
        stage = 'llm';
      }
      await this.#afterTools(reply);
    } catch (error) {
      if (reply.abort.signal.aborted) return;
      this.#error(stage, error as VoiceError);
      if (stage === 'llm' && reply.sentences.length === 0) {
        try {
          await this.#speak(reply, this.settings.fallbackReply);
        } catch (ttsError) {
          if (!reply.abort.signal.aborted) this.#error('tts', ttsError as VoiceError);
        }
      }
    } finally {
      if (this.#reply === reply) {
        this.#output.endUtterance();
        if (reply.writtenSamples === 0) this.#finishReply(reply, false);
      }
    }
  }

  #newReply(fields: Pick<Reply, 'turnId' | 'callerStoppedAt' | 'marks' | 'probability' | 'rule' | 'notice'>): Reply {
    return { id: this.#nextReplyId++, abort: new AbortController(), sentences: [], synthesising: null, writtenSamples: 0, spokenText: '', toolCalls: [], ...fields };
  }

  async #sayNotice(turnId: number, text: string): Promise<void> {
    const now = performance.now();
    const reply = this.#newReply({ turnId, callerStoppedAt: now, marks: { decidedAt: now }, probability: null, rule: null, notice: true });
    this.#reply = reply;
    this.#output.beginUtterance(reply.id);
    try {
      await this.#speak(reply, text);
    } catch (error) {
      if (!reply.abort.signal.aborted) this.#error('tts', error as VoiceError);
    } finally {
      if (this.#reply === reply) {
        this.#output.endUtterance();
        if (reply.writtenSamples === 0) this.#finishReply(reply, false);
      }
    }
  }

  // ---- recogniser outage -------------------------------------------------------------------------

  #onSttDown(error: VoiceError): void {
    if (this.#closed) return;
    this.#sttDown = true;
    this.events.emit('error', { stage: 'stt', code: engineErrorCode(error), message: error.message, retryable: true, recovered: false });
    for (const wake of this.#finalWaiters.splice(0)) wake();
  }

  #onSttBack(downMs: number): void {
    if (this.#closed) return;
    this.#sttDown = false;
    this.#outageNoticeGiven = false;
    this.events.emit('error', { stage: 'stt', code: 'VE_STT_RECONNECTED', message: 'recogniser reconnected', recovered: true, downMs: Math.round(downMs) });
    // A reply (the notice) still playing picks the turn up when it has played out.
    if (this.#reply === null) this.#answerUnanswered();
  }

  /** The recogniser gave up for good: a call that cannot hear ends rather than going on deaf. */
  #onSttLost(error: VoiceError): void {
    if (this.#closed) return;
    this.#error('stt', error);
    this.events.emit('end_call_requested', { reason: 'stt_unavailable' });
  }

  #answerUnanswered(): void {
    const turn = this.#unansweredTurn;
    this.#unansweredTurn = null;
    // A caller who speaks again ends a new turn, which takes the replayed words along.
    if (turn === null || this.#callerSpeaking || this.#sttDown) return;
    void this.#respond(turn.turnId, turn.probability, turn.rule);
  }

  async *#llmText(reply: Reply): AsyncGenerator<string> {
    const stream = this.#llm.complete({
      messages: this.#conversation.snapshot(),
      tools: CALL_TOOLS,
      signal: reply.abort.signal,
      timeoutMs: this.settings.llmTimeoutMs,
    });
    for await (const chunk of stream) {
      if (chunk.type === 'text') {
        reply.marks.llmFirstTokenAt ??= performance.now();
        yield chunk.text;
      } else if (chunk.type === 'tool_call') {
        reply.marks.llmFirstTokenAt ??= performance.now();
        reply.toolCalls.push(chunk.call);
      }
    }
  }

  async #speak(reply: Reply, sentence: string): Promise<void> {
    const startSample = reply.writtenSamples;
    reply.synthesising = { text: sentence, startSample };
    try {
      for await (const audio of this.#tts.synthesize(sentence, { signal: reply.abort.signal })) {
        reply.marks.ttsFirstByteAt ??= performance.now();
        if (!(await this.#output.write(reply.id, audio.pcm, audio.sampleRate))) return;
        reply.writtenSamples += Math.round((audio.pcm.length * this.#output.sink.sampleRate) / audio.sampleRate);
      }
      reply.sentences.push({ text: sentence, startSample, endSample: reply.writtenSamples });
    } finally {
      if (reply.synthesising?.startSample === startSample) reply.synthesising = null;
    }
  }

  async #afterTools(reply: Reply): Promise<void> {
    for (const call of reply.toolCalls) {
      if (call.name === 'transfer_to_human') {
        if (reply.sentences.length === 0) await this.#speak(reply, this.settings.transferReply);
        reply.after = 'transfer';
        this.#conversation.addToolResult(call.id, 'transfer started');
        const reason = safeJson(call.argumentsJson).reason;
        this.events.emit('handoff_requested', { reason: typeof reason === 'string' ? reason : null, turnId: reply.turnId });
      } else if (call.name === 'end_call') {
        if (reply.sentences.length === 0) await this.#speak(reply, this.settings.goodbyeReply);
        reply.after = 'end';
        this.#conversation.addToolResult(call.id, 'call ending');
      }
    }
  }

  #onFirstAudio(id: number): void {
    const reply = this.#reply;
    if (!reply || reply.id !== id) return;
    reply.marks.firstAudioAt = performance.now();
    this.#setState('speaking');
    if (reply.notice) return;
    const m = reply.marks;
    const since = (t: number | undefined) => (t === undefined ? null : Math.round(t - reply.callerStoppedAt));
    this.events.emit('latency', {
      turnId: reply.turnId,
      responseMs: since(m.firstAudioAt),
      stagesMs: {
        endOfUtterance: since(m.decidedAt),
        sttFinal: since(m.sttFinalAt),
        llmFirstToken: m.llmFirstTokenAt === undefined ? null : Math.round(m.llmFirstTokenAt - m.decidedAt),
        ttsFirstByte: m.ttsFirstByteAt === undefined ? null : Math.round(m.ttsFirstByteAt - (m.llmFirstTokenAt ?? m.decidedAt)),
      },
      smartTurn: { probability: reply.probability, rule: reply.rule ?? 'silence' },
    });
  }

  #onPlayedOut(id: number): void {
    const reply = this.#reply;
    if (!reply || reply.id !== id) return;
    this.#finishReply(reply, true);
  }

  #finishReply(reply: Reply, played: boolean): void {
    if (this.#reply !== reply) return;
    this.#reply = null;
    const text = reply.sentences.map((s) => s.text).join(' ');
    if (!reply.notice) this.#conversation.addAssistant(text, reply.toolCalls);
    if (played && text !== '') this.#botTranscript(reply, text);
    this.#policy.reset();
    this.#setState('listening');
    if (reply.after === 'end') this.events.emit('end_call_requested', { reason: 'bot_ended', turnId: reply.turnId });
    else if (this.#unansweredTurn !== null && !this.#sttDown) this.#answerUnanswered();
  }

  #botTranscript(reply: Reply, text: string): void {
    const segmentId = `${this.callId}:bot:${reply.id}`;
    this.events.emit('transcript', { segmentId, speaker: 'bot', text, final: true, turnId: reply.turnId });
    void this.#transport.publishTranscript({ segmentId, speaker: 'bot', text, final: true }).catch(() => {});
  }

  /**
   * The room gets the bot's words as their audio plays (spokenSoFar: each word once its share of its
   * sentence's audio has been sent), so that the text a client shows is what the caller has heard, and
   * a barge-in's heardText only extends it. Only the final text is an event.
   */
  /**
   * The reply's sentences with their spans of audio. The one still being synthesised (the output ring
   * holds 2 s, so a long sentence starts playing well before its synthesis ends) gets an end estimated
   * at a slow speaking rate, so that its words lag its audio rather than lead it, as agents-js paces
   * words at a standard rate when the TTS gives no timings.
   */
  #timedSentences(reply: Reply): Array<{ text: string; startSample: number; endSample: number }> {
    const open = reply.synthesising;
    if (!open) return reply.sentences;
    const estimatedEnd = open.startSample + Math.round((open.text.length / SLOW_SPEECH_CHARS_PER_S) * this.#output.sink.sampleRate);
    return [...reply.sentences, { ...open, endSample: Math.max(reply.writtenSamples, estimatedEnd) }];
  }

  #publishSpoken(reply: Reply): void {
    const { text } = spokenSoFar(this.#timedSentences(reply), this.#output.playedSamples(reply.id));
    if (text === reply.spokenText) return;
    reply.spokenText = text;
    void this.#transport.publishTranscript({ segmentId: `${this.callId}:bot:${reply.id}`, speaker: 'bot', text, final: false }).catch(() => {});
  }

  // ---- barge-in ----------------------------------------------------------------------------------

  #tick(): void {
    if (this.#reply && this.#output.speaking) this.#publishSpoken(this.#reply);
    if (this.#output.speaking || this.#policy.state !== 'none') this.#decide(this.#policy.tick(performance.now()));
  }

  #decide(decision: ReturnType<InterruptionPolicy['tick']>): void {
    if (decision === null) return;
    // performance.now() of the decision, so that a caller in the same process (a test) can time the cut
    // on its own clock; the event's `at` is wall time, too coarse for that.
    const decidedAtMonoMs = performance.now();
    if (decision === 'pause') {
      this.#output.pause();
      this.events.emit('interruption', { event: 'paused', decidedAtMonoMs });
    } else if (decision === 'resume') {
      this.#output.resume();
      this.events.emit('interruption', { event: 'resumed', falseInterruption: true, decidedAtMonoMs });
    } else if (decision === 'interrupt') {
      this.#interrupt(decidedAtMonoMs);
    }
  }

  #interrupt(decidedAtMonoMs = performance.now()): void {
    const reply = this.#reply;
    if (!reply) return;
    const playedSamples = this.#output.playedSamples(reply.id);
    this.#output.clear();
    reply.abort.abort();
    this.#reply = null;
    const heard = heardText(this.#timedSentences(reply), playedSamples);
    if (!reply.notice) this.#conversation.addAssistant(heard);
    if (heard !== '') this.#botTranscript(reply, heard);
    this.events.emit('interruption', {
      event: 'interrupted',
      turnId: reply.turnId,
      playedMs: Math.round((playedSamples * 1000) / this.#output.sink.sampleRate),
      heardText: heard,
      decidedAtMonoMs,
    });
    this.#policy.reset();
    this.#setState('listening');
  }

  #cancelReply(reason: string): void {
    const reply = this.#reply;
    if (!reply) return;
    if (this.#output.speaking) {
      this.#interrupt();
      return;
    }
    reply.abort.abort();
    this.#reply = null;
    this.#output.clear();
    this.events.emit('interruption', { event: 'cancelled', turnId: reply.turnId, reason });
    this.#setState('listening');
  }

  #setState(state: BotState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.events.emit('bot_status', { state });
    void this.#transport.setBotState(state).catch(() => {});
  }

  #error(stage: ErrorStage, error: VoiceError): void {
    this.events.emit('error', { stage, code: engineErrorCode(error), message: String(error?.message ?? error), retryable: error?.retryable ?? false });
  }

  /** Idempotent. Ends recognition, playback and any reply in flight. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#reply?.abort.abort();
    this.#reply = null;
    for (const wake of this.#finalWaiters.splice(0)) wake();
    await Promise.allSettled([this.#stt.close(), this.#output.close()]);
  }
}

function safeJson(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text);
    return typeof value === 'object' && value !== null ? value : {};
  } catch {
    return {};
  }
}
