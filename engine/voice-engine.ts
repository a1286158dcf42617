/**
 * The engine the control plane drives (server/call-engine.ts): it hosts every call of the process on one
 * MediaEngine, joins each call's LiveKit room as the AI participant, runs the voice loop, records on
 * demand, and turns everything that happens into one event stream.
 */
import { AccessToken } from 'livekit-server-sdk';
import type { CallEngine, EngineCapacity, SayOptions, StartBotRequest } from './call-engine.ts';
import { TURN_RULES, type BotMode, type EngineEvent, type EngineEventListener, type LatencyEventData } from './events.ts';
import { MediaEngine } from './media-engine.ts';
import type { CallAudio } from './call-audio.ts';
import { VoiceCall, type VoiceCallSettings } from './call/voice-call.ts';
import { CallEvents } from './call/call-events.ts';
import { CallRecorder } from './call/call-recorder.ts';
import { AGENT_STATE_ATTRIBUTE, CALLER_SAMPLE_RATE, LiveKitTransport, type LiveKitTransportOptions } from './transport/livekit-transport.ts';
import { botIdentity } from './transport/bot-identity.ts';
import { botModeFromRoomMetadata } from './transport/room-signal.ts';
import type { SpeechToText } from './providers/stt.ts';
import type { LanguageModel } from './providers/llm.ts';
import type { TextToSpeech } from './providers/tts.ts';
import { VoiceError } from './errors.ts';
import { LatencyRecorder } from './metrics/latency-recorder.ts';
import { DEFAULT_TURN_DECISION_TARGET_MS, EngineLoad, type EngineLoadReport } from './load/engine-load.ts';
import type { LoadSource } from './dispatch/load.ts';

export interface VoiceEngineOptions {
  media: MediaEngine;
  livekit: { url: string; apiKey: string; apiSecret: string };
  providers: { stt: SpeechToText; llm: LanguageModel; tts: TextToSpeech };
  /** Hard cap of calls, whatever the load says. */
  maxCalls: number;
  /**
   * Admission by measured load (engine/load): `turnDecisionTargetMs` is the turn-decision p95 the
   * engine keeps (default 300); `admission: false` admits up to `maxCalls` and only reports the load.
   */
  load?: { turnDecisionTargetMs?: number; admission?: boolean };
  call?: Partial<VoiceCallSettings>;
  transport?: Partial<Omit<LiveKitTransportOptions, 'url' | 'token'>>;
  /** Called when a listener throws; never rethrown. */
  onListenerError?: (error: unknown) => void;
}

interface HostedCall {
  callId: string;
  voice: VoiceCall;
  transport: LiveKitTransport;
  recorder: CallRecorder | null;
  unsubscribe: () => void;
}

/** A bot whose start is in flight; `stopBot` marks it cancelled and waits for it to unwind. */
interface PendingStart {
  cancelled: boolean;
  settled: Promise<void>;
}

/** `stopBot` (or engine close) arrived while the bot was still joining: the start undid itself. */
export class BotStartCancelledError extends VoiceError {
  constructor(callId: string) {
    super('VE_BOT_START_CANCELLED', `the bot of call ${callId} was stopped while it was starting`, { status: 409 });
  }
}

export class CallNotFoundError extends VoiceError {
  constructor(callId: string) {
    super('VE_CALL_NOT_FOUND', `no bot is running for call ${callId}`, { status: 404 });
  }
}

export class VoiceEngine implements CallEngine {
  readonly options: VoiceEngineOptions;
  #calls = new Map<string, HostedCall>();
  #starting = new Map<string, PendingStart>();
  #listeners = new Set<EngineEventListener>();
  #counters = { providerErrors: 0, callsStarted: 0, callsEnded: 0, interruptions: 0, listenerErrors: 0 };
  /** Per answered turn, from the `latency` events: the whole response and each provider's share. */
  #turnLatency = { response: new LatencyRecorder(4096), sttFinal: new LatencyRecorder(4096), llmFirstToken: new LatencyRecorder(4096), ttsFirstByte: new LatencyRecorder(4096) };
  #closed = false;
  #load: EngineLoad;

  constructor(options: VoiceEngineOptions) {
    this.options = options;
    this.#load = new EngineLoad(options.media.loadProbe(), {
      turnDecisionTargetMs: options.load?.turnDecisionTargetMs ?? DEFAULT_TURN_DECISION_TARGET_MS,
      maxCalls: options.maxCalls,
    }).start();
  }

  capacity(): EngineCapacity {
    const activeCalls = this.#calls.size + this.#starting.size;
    const loadFull = this.options.load?.admission !== false && this.#load.report().full;
    return { activeCalls, maxCalls: this.options.maxCalls, acceptingCalls: !this.#closed && activeCalls < this.options.maxCalls && !loadFull };
  }

  /** The measured load and its parts: what admission uses and LiveKit is told. */
  load(): EngineLoadReport {
    return this.#load.report();
  }

  /**
   * The synchronous figure an agent worker reports (engine/dispatch/load.ts). A call counts from the
   * moment its media opens (the start of `startBot`), so a job the worker's ledger still holds as
   * `starting` counts twice for the moment its room join takes: on the safe side.
   */
  get loadSource(): LoadSource {
    return this.#load.source;
  }

  async startBot(req: StartBotRequest): Promise<void> {
    if (this.#calls.has(req.callId) || this.#starting.has(req.callId)) return;
    if (!this.capacity().acceptingCalls) throw new VoiceError('VE_AT_CAPACITY', 'the engine is at capacity', { status: 503, retryable: true });
    let settle!: () => void;
    const start: PendingStart = { cancelled: false, settled: new Promise<void>((resolve) => (settle = resolve)) };
    this.#starting.set(req.callId, start);
    let media: CallAudio | null = null;
    let transport: LiveKitTransport | null = null;
    let voice: VoiceCall | null = null;
    let hosted: HostedCall | null = null;
    // Every path out of here releases the capacity slot: a failed or cancelled start leaves nothing behind.
    try {
      media = this.options.media.openCall(req.callId, { inputSampleRate: CALLER_SAMPLE_RATE });
      transport = await LiveKitTransport.connect(
        {
          ...this.options.transport,
          url: req.join?.url ?? this.options.livekit.url,
          callerIdentity: req.callerIdentity,
          // A job's token is LiveKit's own (about an hour): reconnects inside a call reuse it.
          token: req.join !== undefined ? () => Promise.resolve(req.join!.token) : () => this.#agentToken(req.callId, req.roomName),
        },
        {
          onCallerAudio: (pcm) => {
            voice?.handleCallerAudio(pcm);
            hosted?.recorder?.caller(pcm);
          },
          onCallerText: (text) => voice?.handleCallerText(text),
          onCallerLeft: (reason) => void this.#end(req.callId, reason),
          // The api role's handoff, from another process (server/dispatch-engine.ts).
          onRoomMetadata: (metadata) => {
            const mode = botModeFromRoomMetadata(metadata);
            if (mode !== undefined) voice?.setMode(mode);
          },
          onReconnected: (downMs) => voice?.events.emit('error', { stage: 'transport', code: 'VE_LIVEKIT_RECONNECTED', downMs: Math.round(downMs), recovered: true }),
        },
      );
      // Stopped while joining: joining is not abortable, so leave the room again (the caller of
      // stopBot waits for this, so a room it deletes next is not re-created by the bot).
      if (start.cancelled) throw new BotStartCancelledError(req.callId);
      const events = new CallEvents(req.callId, (error) => this.#listenerError(error));
      voice = new VoiceCall({
        callId: req.callId,
        media,
        transport,
        ...this.options.providers,
        settings: { ...this.options.call, ...(req.instructions ? { instructions: req.instructions } : {}) },
        events,
        ...(req.greeting ? { greeting: req.greeting } : {}),
      });
      const unsubscribe = events.on((event) => this.#onCallEvent(event));
      hosted = { callId: req.callId, voice, transport, recorder: null, unsubscribe };
      this.#calls.set(req.callId, hosted);
      this.#counters.callsStarted++;
      // The room has seen `initializing` since the bot joined; from here on the call answers.
      void transport.setBotState('listening').catch(() => {});
      events.emit('bot_status', { state: 'listening', joined: true, providers: this.providerLabels() });
    } catch (error) {
      await voice?.close().catch(() => {});
      await transport?.close().catch(() => {});
      await media?.close().catch(() => {});
      throw error;
    } finally {
      this.#starting.delete(req.callId);
      settle();
    }
  }

  providerLabels(): { stt: string; llm: string; tts: string } {
    const { stt, llm, tts } = this.options.providers;
    return { stt: stt.label, llm: llm.label, tts: tts.label };
  }

  async #agentToken(callId: string, roomName: string): Promise<string> {
    // In the room as `initializing` from its first moment, as a LiveKit agent is until it can answer.
    const token = new AccessToken(this.options.livekit.apiKey, this.options.livekit.apiSecret, {
      identity: botIdentity(callId),
      name: 'AI agent',
      ttl: '12h',
      attributes: { [AGENT_STATE_ATTRIBUTE]: 'initializing' },
    });
    token.kind = 'agent';
    token.addGrant({ roomJoin: true, room: roomName, canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: true, agent: true });
    return token.toJwt();
  }

  #onCallEvent(event: EngineEvent): void {
    if (event.type === 'error') this.#counters.providerErrors++;
    if (event.type === 'interruption' && event.data.event === 'interrupted') this.#counters.interruptions++;
    if (event.type === 'latency') this.#recordTurnLatency(event.data);
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#listenerError(error);
      }
    }
    // The call asks to be ended: its bot said goodbye, or it cannot go on (recogniser or media gone).
    // After the listeners, so that they see the request before the `call_ended` it causes.
    if (event.type === 'end_call_requested') void this.#end(event.callId, event.data.reason);
  }

  #recordTurnLatency(data: LatencyEventData): void {
    const { sttFinal, llmFirstToken, ttsFirstByte } = data.stagesMs;
    if (data.responseMs !== null) this.#turnLatency.response.record(data.responseMs);
    if (sttFinal !== null) this.#turnLatency.sttFinal.record(sttFinal);
    if (llmFirstToken !== null) this.#turnLatency.llmFirstToken.record(llmFirstToken);
    if (ttsFirstByte !== null) this.#turnLatency.ttsFirstByte.record(ttsFirstByte);
  }

  #listenerError(error: unknown): void {
    this.#counters.listenerErrors++;
    this.options.onListenerError?.(error);
  }

  async #end(callId: string, reason: string): Promise<void> {
    const hosted = this.#calls.get(callId);
    if (!hosted) return;
    this.#calls.delete(callId);
    const recording = hosted.recorder?.close();
    hosted.voice.events.emit('call_ended', { reason, ...(recording ? { recording } : {}) });
    hosted.unsubscribe();
    this.#counters.callsEnded++;
    await hosted.voice.close();
    await hosted.transport.close();
    await this.options.media.getCall(callId)?.close();
  }

  async stopBot(callId: string): Promise<void> {
    const starting = this.#starting.get(callId);
    if (starting) {
      starting.cancelled = true;
      await starting.settled;
      return;
    }
    await this.#end(callId, 'stopped');
  }

  async setBotMode(callId: string, mode: BotMode): Promise<void> {
    this.#get(callId).voice.setMode(mode);
  }

  /** Resolves once the call has taken the text; it is spoken from there (a failure is an `error` event). */
  async say(callId: string, text: string, opts: SayOptions): Promise<void> {
    void this.#get(callId).voice.say(text, opts);
  }

  async startRecording(callId: string, filePath: string): Promise<void> {
    const hosted = this.#get(callId);
    if (hosted.recorder) throw new VoiceError('VE_RECORDING_ACTIVE', `call ${callId} is already being recorded`, { status: 409 });
    hosted.recorder = new CallRecorder(filePath, hosted.transport.callerSampleRate, hosted.transport.sink.sampleRate);
    hosted.voice.onBotFrame((pcm) => hosted.recorder?.bot(pcm));
  }

  async stopRecording(callId: string): Promise<{ filePath: string; durationMs: number }> {
    const hosted = this.#get(callId);
    const recorder = hosted.recorder;
    if (!recorder) throw new VoiceError('VE_RECORDING_NOT_ACTIVE', `call ${callId} is not being recorded`, { status: 409 });
    hosted.recorder = null;
    hosted.voice.onBotFrame(null);
    return recorder.close();
  }

  #get(callId: string): HostedCall {
    const hosted = this.#calls.get(callId);
    if (!hosted) throw new CallNotFoundError(callId);
    return hosted;
  }

  onEvent(listener: EngineEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  metrics(): Record<string, number> {
    const m = this.options.media.metrics();
    return {
      calls_active: this.#calls.size,
      calls_started_total: this.#counters.callsStarted,
      calls_ended_total: this.#counters.callsEnded,
      frame_latency_p50_ms: m.frameLatencyMs.p50,
      frame_latency_p99_ms: m.frameLatencyMs.p99,
      turn_decision_latency_p95_ms: m.stopToTurnDecisionMs.p95,
      input_dropped_samples_total: m.droppedSamples,
      worker_restarts_total: m.workerRestarts,
      media_workers_down: m.workersDown,
      provider_errors_total: this.#counters.providerErrors,
      turns_answered_total: this.#turnLatency.response.count,
      response_latency_p50_ms: this.#turnLatency.response.percentile(50),
      response_latency_p95_ms: this.#turnLatency.response.percentile(95),
      stt_final_latency_p50_ms: this.#turnLatency.sttFinal.percentile(50),
      llm_first_token_latency_p50_ms: this.#turnLatency.llmFirstToken.percentile(50),
      tts_first_byte_latency_p50_ms: this.#turnLatency.ttsFirstByte.percentile(50),
      interruptions_total: this.#counters.interruptions,
      smart_turn_requests_total: m.smartTurn.requests,
      smart_turn_failures_total: m.smartTurn.failures,
      // Requests that missed SMART_TURN_DEADLINE_MS: dropped before a thread ran them, or ran past it.
      smart_turn_expired_total: m.smartTurn.expired,
      smart_turn_late_total: m.smartTurn.late,
      ...Object.fromEntries(TURN_RULES.map((rule) => [`turn_decisions_${rule}_total`, m.turnDecisions[rule]])),
      vad_mean_batch_size: m.vadMeanBatchSize,
      vad_silent_windows_total: m.vadSilentWindows,
      event_loop_delay_p99_ms: m.eventLoopDelayP99Ms,
      listener_errors_total: this.#counters.listenerErrors,
      ...this.#load.metrics(),
    };
  }

  /** Test hook for the live page and tests: the voice call object of a call. */
  call(callId: string): VoiceCall | undefined {
    return this.#calls.get(callId)?.voice;
  }

  /** Test hook: the room connection of a call (to simulate network trouble). */
  transportOf(callId: string): LiveKitTransport | undefined {
    return this.#calls.get(callId)?.transport;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#load.close();
    for (const start of this.#starting.values()) start.cancelled = true;
    await Promise.allSettled([...this.#calls.keys()].map((callId) => this.#end(callId, 'engine_closed')));
    await Promise.allSettled([...this.#starting.values()].map((start) => start.settled));
  }
}
