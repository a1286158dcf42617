/**
 * What the control plane needs from the voice engine. The lead implements it in `engine/`; the REST layer
 * depends on this contract only, and `server/testing/fake-engine.ts` implements it for tests.
 */

/** Admission control input: `POST /v1/calls` answers 503 `VE_AT_CAPACITY` while `acceptingCalls` is false. */
export interface EngineCapacity {
  activeCalls: number;
  maxCalls: number;
  acceptingCalls: boolean;
}

/**
 * Something that happened in a call: transcript, turn state, bot status, latency... `seq` runs 1, 2, 3, ...
 * per call without holes (it is the SSE `id`, so clients resume with `Last-Event-ID`, and a resumed stream
 * tells a missing event by it); `eventId` is globally unique so that replays through the outbox are
 * idempotent.
 *
 * Types the control plane also folds into the call record:
 * - `transcript` with `data: { segmentId, speaker, text, startMs, endMs, final }` -> transcript segments;
 * - `latency` with `data: { turnId, responseMs?, stagesMs? }` -> the call's per-turn latencies.
 */
export type EngineEvent = {
  callId: string;
  seq: number;
  eventId: string;
  type: string;
  at: string;
  data: Record<string, unknown>;
};

export type BotMode = 'active' | 'transcriber';

export interface StartBotRequest {
  callId: string;
  roomName: string;
  callerIdentity?: string;
  instructions?: string;
}

export interface CallEngine {
  capacity(): EngineCapacity;
  startBot(req: StartBotRequest): Promise<void>;
  stopBot(callId: string): Promise<void>;
  setBotMode(callId: string, mode: BotMode): Promise<void>;
  /** Engine-side WAV of both sides; works without LiveKit egress. */
  startRecording(callId: string, filePath: string): Promise<void>;
  stopRecording(callId: string): Promise<{ filePath: string; durationMs: number }>;
  /** Returns the unsubscribe function. A listener that throws must not break the engine. */
  onEvent(listener: (e: EngineEvent) => void): () => void;
  /** Flat gauges/counters (frame latency p99, drops, worker restarts, provider errors...), exported on /metrics. */
  metrics(): Record<string, number>;
  close(): Promise<void>;
}
