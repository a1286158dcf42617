import { randomUUID } from 'node:crypto';
import { ClosedError, VoiceError } from '../../engine/errors.ts';
import type { CallEngine, EngineCapacity, SayOptions, StartBotRequest } from '../../engine/call-engine.ts';
import type { BotMode, EngineEvent, EngineEventDataMap, EngineEventListener, EngineEventOf, EngineEventType } from '../../engine/events.ts';

/** Joins the real room as the bot (e.g. with @livekit/rtc-node); returns how to leave it. */
export type BotConnector = (req: StartBotRequest) => Promise<() => Promise<void>>;

export interface FakeEngineOptions {
  maxCalls?: number;
  /** Without one, the bot exists only in this object (no participant in the room). */
  connectBot?: BotConnector;
}

interface FakeCall {
  req: StartBotRequest;
  mode: BotMode;
  leave?: () => Promise<void>;
  recording?: { filePath: string; startedAtMs: number };
  said?: Array<{ text: string; interruptible: boolean }>;
}

/**
 * A `CallEngine` for tests of the control plane: tracks calls, admits up to `maxCalls`, and emits events
 * only when a test calls `emit`. Failures can be injected per method with `failNext`.
 */
export class FakeEngine implements CallEngine {
  readonly calls = new Map<string, FakeCall>();
  /** Every method call in order, for "these requests in, these engine calls out" assertions. */
  readonly log: string[] = [];
  maxCalls: number;
  readonly #connectBot: BotConnector | undefined;
  readonly #listeners = new Set<EngineEventListener>();
  readonly #failures = new Map<string, unknown>();
  readonly #pauses = new Map<string, Promise<void>>();
  readonly #seq = new Map<string, number>();
  #closed = false;

  constructor(options: FakeEngineOptions = {}) {
    this.maxCalls = options.maxCalls ?? 10;
    this.#connectBot = options.connectBot;
  }

  /** The next call of `method` throws `err`. */
  failNext(method: 'startBot' | 'stopBot' | 'setBotMode' | 'say' | 'startRecording' | 'stopRecording', err: unknown): void {
    this.#failures.set(method, err);
  }

  /** The next call of `method` waits until the returned function is called (a request still in flight). */
  pauseNext(method: 'startBot'): () => void {
    let release = (): void => {};
    this.#pauses.set(method, new Promise<void>((resolve) => (release = resolve)));
    return () => release();
  }

  async #maybePause(method: string): Promise<void> {
    const pause = this.#pauses.get(method);
    if (pause === undefined) return;
    this.#pauses.delete(method);
    await pause;
  }

  #maybeFail(method: string): void {
    if (this.#closed) throw new ClosedError('engine');
    const err = this.#failures.get(method);
    if (err !== undefined) {
      this.#failures.delete(method);
      throw err;
    }
  }

  #call(callId: string): FakeCall {
    const call = this.calls.get(callId);
    if (call === undefined) throw new VoiceError('VE_ENGINE_NO_CALL', `no bot for call ${callId}`, { status: 404 });
    return call;
  }

  capacity(): EngineCapacity {
    return { activeCalls: this.calls.size, maxCalls: this.maxCalls, acceptingCalls: !this.#closed && this.calls.size < this.maxCalls };
  }

  async startBot(req: StartBotRequest): Promise<void> {
    this.log.push(`startBot ${req.callId}`);
    await this.#maybePause('startBot');
    this.#maybeFail('startBot');
    if (this.calls.size >= this.maxCalls) throw new VoiceError('VE_AT_CAPACITY', 'fake engine is full', { status: 503, retryable: true });
    const call: FakeCall = { req, mode: 'active' };
    this.calls.set(req.callId, call);
    if (this.#connectBot !== undefined) call.leave = await this.#connectBot(req);
    this.emit(req.callId, 'bot_status', { state: 'listening', joined: true });
  }

  async stopBot(callId: string): Promise<void> {
    this.log.push(`stopBot ${callId}`);
    this.#maybeFail('stopBot');
    const call = this.#call(callId);
    this.calls.delete(callId);
    await call.leave?.();
  }

  async setBotMode(callId: string, mode: BotMode): Promise<void> {
    this.log.push(`setBotMode ${callId} ${mode}`);
    this.#maybeFail('setBotMode');
    this.#call(callId).mode = mode;
    this.emit(callId, 'bot_mode', { mode });
  }

  /** Records what the bot was asked to say (`FakeCall.said`); speaks nothing. */
  async say(callId: string, text: string, opts: SayOptions): Promise<void> {
    this.log.push(`say ${callId} ${opts.interruptible ? 'interruptible' : 'uninterruptible'}`);
    this.#maybeFail('say');
    const call = this.#call(callId);
    (call.said ??= []).push({ text, interruptible: opts.interruptible });
  }

  async startRecording(callId: string, filePath: string): Promise<void> {
    this.log.push(`startRecording ${callId}`);
    this.#maybeFail('startRecording');
    this.#call(callId).recording = { filePath, startedAtMs: Date.now() };
  }

  async stopRecording(callId: string): Promise<{ filePath: string; durationMs: number }> {
    this.log.push(`stopRecording ${callId}`);
    this.#maybeFail('stopRecording');
    const call = this.#call(callId);
    const recording = call.recording;
    if (recording === undefined) throw new VoiceError('VE_ENGINE_NOT_RECORDING', 'not recording', { status: 409 });
    call.recording = undefined;
    return { filePath: recording.filePath, durationMs: Date.now() - recording.startedAtMs };
  }

  /** Emits an event with the call's next seq (kept per call id, also after the bot stopped). */
  emit<T extends EngineEventType>(callId: string, type: T, data: EngineEventDataMap[T]): EngineEventOf<T> {
    const seq = (this.#seq.get(callId) ?? 0) + 1;
    this.#seq.set(callId, seq);
    const event = { callId, seq, eventId: randomUUID(), type, at: new Date().toISOString(), data } as EngineEvent as EngineEventOf<T>;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own problem, never the engine's.
      }
    }
    return event;
  }

  onEvent(listener: EngineEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  metrics(): Record<string, number> {
    return { frame_latency_p99_ms: 1.5, frames_dropped_total: 0, worker_restarts_total: 0, provider_errors_total: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [callId, call] of this.calls) {
      this.calls.delete(callId);
      await call.leave?.();
    }
    this.#listeners.clear();
  }
}
