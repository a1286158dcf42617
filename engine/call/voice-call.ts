/**
 * One AI voice call: caller audio to the media core and the recogniser; turn decisions to the LLM; its
 * reply, sentence by sentence, to speech synthesis and out to the room; barge-in on top. Depends on
 * provider contracts and the transport contract only.
 *
 * This file wires the call's pieces to the media path's and the recogniser's events and holds its
 * state (mode, bot state, the reply in flight); each concern is its own piece: RecogniserFeed (the
 * caller's audio to the recogniser), CallerTranscript (the turn's text), Reply (one reply in flight,
 * its cancellation and latency marks), BotTranscript (what the bot said), BargeIn (the caller's voice
 * over the bot), RecogniserOutage (turns the recogniser could not hear), call-tools.ts (what a tool
 * call leads to) and media-events.ts (the media events the call only reports).
 */
import type { CallAudio, MediaEvent } from '../call-audio.ts';
import type { SpeechToText, TranscriptResult } from '../providers/stt.ts';
import type { LanguageModel } from '../providers/llm.ts';
import type { TextToSpeech } from '../providers/tts.ts';
import type { VoiceError } from '../errors.ts';
import { engineErrorCode } from '../error-codes.ts';
import type { BotMode, ErrorStage, TurnRule } from '../events.ts';
import type { BotState, CallTransport } from '../transport/call-transport.ts';
import { BargeIn } from './barge-in.ts';
import { BotOutput } from './bot-output.ts';
import { BotTranscript } from './bot-transcript.ts';
import { CallEvents } from './call-events.ts';
import { CallerTranscript } from './caller-transcript.ts';
import { CALL_TOOLS, handleToolCalls, type ToolContext } from './call-tools.ts';
import { Conversation } from './conversation.ts';
import { reportMediaEvent } from './media-events.ts';
import { RecogniserFeed } from './recogniser-feed.ts';
import { RecogniserOutage } from './recogniser-outage.ts';
import { Reply, type ReplyFields } from './reply.ts';
import { SentenceSplitter } from '../providers/sentence-splitter.ts';
import { DEFAULT_VOICE_CALL_SETTINGS, type VoiceCallSettings } from './voice-call-settings.ts';

export { CALL_TOOLS } from './call-tools.ts';
export { DEFAULT_VOICE_CALL_SETTINGS, type VoiceCallSettings } from './voice-call-settings.ts';

/** What a call needs of its media path: the caller's audio and the recogniser's end-of-speech signal in, VAD and turn events out. */
export type VoiceCallMedia = Pick<CallAudio, 'writeCallerAudio' | 'onEvent' | 'processedSamples' | 'handleRecognizerEndOfSpeech'>;

/** The turnId of a typed turn: the turn detector numbers spoken turns from 1. */
export const TYPED_TURN_ID = 0;

/** How often barge-in decisions and the bot's spoken words are brought up to date. */
const POLICY_TICK_MS = 50;

export class VoiceCall {
  readonly callId: string;
  readonly events: CallEvents;
  readonly settings: VoiceCallSettings;
  #media: VoiceCallMedia;
  #transport: CallTransport;
  #feed: RecogniserFeed;
  #llm: LanguageModel;
  #tts: TextToSpeech;
  #output: BotOutput;
  #conversation: Conversation;
  #bargeIn: BargeIn;
  #callerText: CallerTranscript;
  #botText: BotTranscript;
  #outage = new RecogniserOutage();
  #tools: ToolContext;
  #mode: BotMode = 'active';
  #state: BotState = 'listening';
  #reply: Reply | null = null;
  #nextReplyId = 1;
  #callerStoppedAt = 0;
  /** Said on the caller's first audio frame; null once said (or when there is none). */
  #greeting: string | null;
  /** A turn the caller ended during a non-interruptible `say`: answered when it has played. */
  #heldTurn: { turnId: number; probability: number | null; rule: TurnRule } | null = null;
  #ticker: NodeJS.Timeout;
  #closed = false;
  #onBotFrame: ((pcm: Int16Array) => void) | null = null;

  constructor(opts: {
    callId: string;
    media: VoiceCallMedia;
    transport: CallTransport;
    stt: SpeechToText;
    llm: LanguageModel;
    tts: TextToSpeech;
    settings?: Partial<VoiceCallSettings>;
    events?: CallEvents;
    /** Spoken once, when the caller's first audio arrives: a caller who joins late still hears it. */
    greeting?: string;
  }) {
    this.callId = opts.callId;
    this.settings = { ...DEFAULT_VOICE_CALL_SETTINGS, ...opts.settings };
    this.events = opts.events ?? new CallEvents(opts.callId);
    this.#media = opts.media;
    this.#greeting = opts.greeting?.trim() || null;
    this.#transport = opts.transport;
    this.#llm = opts.llm;
    this.#tts = opts.tts;
    this.#conversation = new Conversation(this.settings.instructions);
    const { transferReply, goodbyeReply } = this.settings;
    this.#tools = { conversation: this.#conversation, events: this.events, transferReply, goodbyeReply };
    this.#output = new BotOutput(opts.transport.sink, {
      onFirstAudio: (id) => this.#onFirstAudio(id),
      onPlayedOut: (id) => this.#onPlayedOut(id),
      onFrame: (pcm) => this.#onBotFrame?.(pcm),
    });
    this.#bargeIn = new BargeIn({
      settings: this.settings.interruption,
      output: this.#output,
      events: this.events,
      enabled: () => this.#mode === 'active' && (this.#reply?.interruptible ?? true),
      interrupt: (decidedAtMonoMs) => this.#interrupt(decidedAtMonoMs),
    });
    this.#callerText = new CallerTranscript(opts.callId, this.events, opts.transport);
    this.#botText = new BotTranscript(opts.callId, this.events, opts.transport);
    const stt = opts.stt.stream({
      sampleRate: opts.transport.callerSampleRate,
      maxOutageMs: this.settings.sttOutageMaxMs,
      onResult: (r) => this.#onTranscript(r),
      onEndOfSpeech: (signal) => this.#media.handleRecognizerEndOfSpeech(signal.lastWordEndMs),
      onError: (e) => this.#onSttLost(e),
      onUnavailable: (e) => this.#onSttDown(e),
      onReconnected: (downMs) => this.#onSttBack(downMs),
    });
    this.#feed = new RecogniserFeed(stt, opts.transport.callerSampleRate);
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
    this.#feed.push(pcm);
    if (this.#greeting !== null) {
      const greeting = this.#greeting;
      this.#greeting = null;
      if (this.#mode === 'active') void this.say(greeting, { interruptible: true });
    }
  }

  /**
   * Speaks `text` now (the greeting, a dispatcher's announcement). A reply in flight is cut, as a
   * barge-in would cut it (what the caller heard of it stays in the conversation): "now" means now,
   * and a queued announcement could wait behind a long answer. The text enters the conversation as the
   * bot's words. With `interruptible: false` the caller's voice does not stop it; a turn they end
   * meanwhile is answered once it has played. Resolves once its audio is written, not played.
   */
  async say(text: string, opts: { interruptible: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#cancelReply('say');
    const now = performance.now();
    const reply = this.#newReply({
      turnId: 0,
      callerStoppedAt: now,
      marks: { decidedAt: now },
      probability: null,
      rule: null,
      scripted: true,
      interruptible: opts.interruptible,
    });
    this.#reply = reply;
    this.#output.beginUtterance(reply.id);
    try {
      const splitter = new SentenceSplitter();
      for (const sentence of [...splitter.push(text), ...splitter.flush()]) {
        if (reply.aborted) break;
        await reply.speak(sentence);
      }
    } catch (error) {
      if (!reply.aborted) this.#error('tts', error as VoiceError);
    } finally {
      this.#endReply(reply);
    }
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
    if (event.type === 'speech_start') {
      this.#feed.setCallerSpeaking(true);
      this.events.emit('vad', { event: 'speech_start', offsetMs: event.offsetSamples / 16 });
      const interruptible = this.#reply?.interruptible ?? true;
      if (!this.#bargeIn.speechStarted() && this.#state === 'thinking' && interruptible) this.#cancelReply('caller_resumed');
    } else if (event.type === 'speech_end') {
      this.#feed.setCallerSpeaking(false);
      const speechEndMs = event.offsetSamples / 16;
      this.#callerText.speechEnded(speechEndMs);
      this.#callerStoppedAt = performance.now() - (this.#media.processedSamples - event.offsetSamples) / 16;
      this.events.emit('vad', { event: 'speech_end', offsetMs: speechEndMs });
      this.#bargeIn.speechEnded();
    } else {
      reportMediaEvent(this.events, event);
      if (event.type !== 'user_turn_complete') return;
      if (this.#reply?.interruptible === false) this.#heldTurn = { turnId: event.turnId, probability: event.probability, rule: event.rule };
      else if (!this.#output.speaking) void this.#respond(event.turnId, event.probability, event.rule);
    }
  }

  #onTranscript(result: TranscriptResult): void {
    if (result.text.trim() === '') return;
    this.#callerText.publish(result);
    this.#bargeIn.words(result.text);
    if (result.kind === 'final') this.#callerText.addFinal(result);
  }

  // ---- bot side ----------------------------------------------------------------------------------

  async #respond(turnId: number, probability: number | null, rule: TurnRule): Promise<void> {
    if (this.#mode !== 'active' || this.#closed) return;
    const decidedAt = performance.now();
    const callerStoppedAt = this.#callerStoppedAt || decidedAt;
    this.#cancelReply('superseded');
    this.#outage.drop();
    const { text, sttFinalAt } = await this.#callerText.collect({
      waitMs: this.settings.sttFinalWaitMs,
      askForFinal: () => this.#feed.finalize(),
      // No final can come while the recogniser is unreachable: do not keep the caller waiting for one.
      canWait: () => !this.#closed && !this.#outage.down,
    });
    if (text === '' && this.#outage.down && !this.#closed && this.#mode === 'active') {
      // The caller said something nobody could hear: tell them once, answer when the recogniser is back.
      if (this.#outage.hold({ turnId, probability, rule })) await this.#sayNotice(turnId, this.settings.sttOutageNotice);
      return;
    }
    if (text === '' || this.#closed || this.#mode !== 'active') return;
    await this.#answer(text, { turnId, callerStoppedAt, marks: { decidedAt, sttFinalAt }, probability, rule });
  }

  /**
   * A message the caller typed (LiveKit's `lk.chat`): a finished user turn with that text. As in
   * LiveKit Agents, it stops the reply in flight, even one being heard, and is answered at once. It has
   * no turn rule (the turn detector did not end it), so it adds no turn latency, and turnId
   * TYPED_TURN_ID.
   */
  handleCallerText(text: string): void {
    const typed = text.trim();
    if (this.#closed || typed === '') return;
    this.#callerText.typed(typed);
    if (this.#mode !== 'active') return;
    this.#cancelReply('caller_text');
    this.#outage.drop();
    const now = performance.now();
    void this.#answer(typed, { turnId: TYPED_TURN_ID, callerStoppedAt: now, marks: { decidedAt: now }, probability: null, rule: null });
  }

  async #answer(text: string, fields: Omit<ReplyFields, 'id' | 'tts' | 'output'>): Promise<void> {
    // A turn that came while this one's text was being collected (a typed one) is superseded.
    this.#cancelReply('superseded');
    this.#conversation.addUser(text);
    const reply = this.#newReply(fields);
    this.#reply = reply;
    this.#setState('thinking');
    this.#output.beginUtterance(reply.id);
    try {
      await reply.answer({
        llm: this.#llm,
        messages: this.#conversation.snapshot(),
        tools: CALL_TOOLS,
        timeoutMs: this.settings.llmTimeoutMs,
        fallbackReply: this.settings.fallbackReply,
        afterText: () => handleToolCalls(reply, this.#tools),
        onError: (stage, error) => this.#error(stage, error),
      });
    } finally {
      this.#endReply(reply);
    }
  }

  #newReply(fields: Omit<ReplyFields, 'id' | 'tts' | 'output'>): Reply {
    return new Reply({ id: this.#nextReplyId++, ...fields, tts: this.#tts, output: this.#output });
  }

  async #sayNotice(turnId: number, text: string): Promise<void> {
    const now = performance.now();
    const reply = this.#newReply({ turnId, callerStoppedAt: now, marks: { decidedAt: now }, probability: null, rule: null, notice: true });
    this.#reply = reply;
    this.#output.beginUtterance(reply.id);
    try {
      await reply.speak(text);
    } catch (error) {
      if (!reply.aborted) this.#error('tts', error as VoiceError);
    } finally {
      this.#endReply(reply);
    }
  }

  /** No more audio for the reply: it ends when it has played out, at once if it has none. */
  #endReply(reply: Reply): void {
    if (this.#reply !== reply) return;
    this.#output.endUtterance();
    if (reply.writtenSamples === 0) this.#finishReply(reply, false);
  }

  #onFirstAudio(id: number): void {
    const reply = this.#reply;
    if (!reply || reply.id !== id) return;
    reply.marks.firstAudioAt = performance.now();
    this.#setState('speaking');
    // Latency is the answer to a spoken turn: notices, scripted speech (greeting, say) and typed turns have none.
    if (!reply.notice && !reply.scripted && reply.rule !== null) this.events.emit('latency', reply.latency());
  }

  #onPlayedOut(id: number): void {
    const reply = this.#reply;
    if (!reply || reply.id !== id) return;
    this.#finishReply(reply, true);
  }

  #finishReply(reply: Reply, played: boolean): void {
    if (this.#reply !== reply) return;
    this.#reply = null;
    const text = reply.text;
    if (!reply.notice) this.#conversation.addAssistant(text, reply.toolCalls);
    if (played && text !== '') this.#botText.final(reply, text);
    this.#bargeIn.reset();
    this.#setState('listening');
    if (reply.after === 'end') this.events.emit('end_call_requested', { reason: 'bot_ended', turnId: reply.turnId });
    else if (this.#heldTurn !== null) {
      const turn = this.#heldTurn;
      this.#heldTurn = null;
      void this.#respond(turn.turnId, turn.probability, turn.rule);
    } else if (!this.#outage.down) this.#answerHeldTurn();
  }

  #tick(): void {
    const reply = this.#reply;
    if (reply && this.#output.speaking) this.#botText.progress(reply);
    this.#bargeIn.tick();
  }

  /** Stops the reply in flight now; what the caller heard of it stays in the conversation. */
  #interrupt(decidedAtMonoMs = performance.now()): void {
    const reply = this.#reply;
    if (!reply) return;
    // Read before the output drops the reply's audio, and with it the count.
    const playedSamples = reply.playedSamples();
    this.#output.clear();
    reply.abort.abort();
    this.#reply = null;
    const heard = reply.heard(playedSamples);
    if (!reply.notice) this.#conversation.addAssistant(heard);
    if (heard !== '') this.#botText.final(reply, heard);
    this.events.emit('interruption', {
      event: 'interrupted',
      turnId: reply.turnId,
      playedMs: Math.round((playedSamples * 1000) / this.#output.sink.sampleRate),
      heardText: heard,
      decidedAtMonoMs,
    });
    this.#bargeIn.reset();
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

  // ---- recogniser outage -------------------------------------------------------------------------

  #onSttDown(error: VoiceError): void {
    if (this.#closed) return;
    this.#outage.wentDown();
    this.events.emit('error', { stage: 'stt', code: engineErrorCode(error), message: error.message, retryable: true, recovered: false });
    this.#callerText.wake();
  }

  #onSttBack(downMs: number): void {
    if (this.#closed) return;
    this.#outage.cameBack();
    this.events.emit('error', { stage: 'stt', code: 'VE_STT_RECONNECTED', message: 'recogniser reconnected', recovered: true, downMs: Math.round(downMs) });
    // A reply (the notice) still playing picks the turn up when it has played out.
    if (this.#reply === null) this.#answerHeldTurn();
  }

  /** The recogniser gave up for good: a call that cannot hear ends rather than going on deaf. */
  #onSttLost(error: VoiceError): void {
    if (this.#closed) return;
    this.#error('stt', error);
    this.events.emit('end_call_requested', { reason: 'stt_unavailable' });
  }

  #answerHeldTurn(): void {
    const turn = this.#outage.take();
    // A caller who speaks again ends a new turn, which takes the replayed words along.
    if (turn === null || this.#feed.callerSpeaking || this.#outage.down) return;
    void this.#respond(turn.turnId, turn.probability, turn.rule);
  }

  // ---- state -------------------------------------------------------------------------------------

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
    this.#callerText.wake();
    await Promise.allSettled([this.#feed.stream.close(), this.#output.close()]);
  }
}
