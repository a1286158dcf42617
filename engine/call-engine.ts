/**
 * What the control plane needs from the voice engine. `engine/voice-engine.ts` implements it; the REST
 * layer depends on this contract only, and `server/testing/fake-engine.ts` implements it for tests.
 * Events cross it in the shape of `engine/events.ts`.
 */
import type { BotMode, EngineEventListener } from './events.ts';
import type { EngineLoadReport } from './load/engine-load.ts';

/** Admission control input: `POST /v1/calls` answers 503 `VE_AT_CAPACITY` while `acceptingCalls` is false. */
export interface EngineCapacity {
  activeCalls: number;
  maxCalls: number;
  acceptingCalls: boolean;
}

export interface StartBotRequest {
  callId: string;
  roomName: string;
  callerIdentity?: string;
  instructions?: string;
  /** Spoken once, when the caller's first audio arrives (so a caller who joins late hears it); interruptible. */
  greeting?: string;
  /**
   * Join with this URL and token instead of a token the engine mints: a LiveKit agent job's
   * assignment (engine/dispatch). The token must carry `botIdentity(callId)` as its identity.
   */
  join?: { url: string; token: string };
}

export interface SayOptions {
  interruptible: boolean;
}

export interface CallEngine {
  capacity(): EngineCapacity;
  /** The measured load behind `capacity()` and its parts; absent in engines that admit by count only. */
  load?(): EngineLoadReport;
  startBot(req: StartBotRequest): Promise<void>;
  stopBot(callId: string): Promise<void>;
  setBotMode(callId: string, mode: BotMode): Promise<void>;
  /**
   * The bot speaks `text` now (a dispatcher's announcement), cutting a reply in flight. With
   * `interruptible: false` the caller's voice does not stop it; their turn is answered after it.
   */
  say(callId: string, text: string, opts: SayOptions): Promise<void>;
  /** Engine-side WAV of both sides; works without LiveKit egress. */
  startRecording(callId: string, filePath: string): Promise<void>;
  stopRecording(callId: string): Promise<{ filePath: string; durationMs: number }>;
  /** Returns the unsubscribe function. A listener that throws must not break the engine. */
  onEvent(listener: EngineEventListener): () => void;
  /** Flat gauges/counters (frame latency p99, drops, worker restarts, provider errors...), exported on /metrics. */
  metrics(): Record<string, number>;
  close(): Promise<void>;
}
