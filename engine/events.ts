/**
 * The one contract for what happens in a call, from the engine to every consumer: the outbox and the
 * stores, the event hub, SSE/WebSocket clients and the live page. One member per event name, each with
 * the fields it carries, so that a change of an event's shape fails type-checking wherever it matters.
 *
 * Every event has a per-call `seq` that runs 1, 2, 3, ... without holes (the SSE `id`, so clients resume
 * with `Last-Event-ID`, and a resumed stream tells a missing event by it), a globally unique `eventId` (so replays through the outbox are idempotent), an ISO time, its `type` and `data`.
 */
import type { EngineErrorCode } from './error-codes.ts';

/** The bot's state as LiveKit agents publish it in the `lk.agent.state` participant attribute. */
export type AgentState = 'initializing' | 'listening' | 'thinking' | 'speaking';

/** What the bot does in the room: speaks, or only transcribes while a human has taken over. */
export type BotMode = 'active' | 'transcriber';

/** Who a transcript segment of the engine belongs to. */
export type TranscriptSpeaker = 'caller' | 'bot';

/**
 * Which rule ended a user turn:
 * - `model`: Smart Turn answered in time and said complete;
 * - `silence`: Smart Turn answered "incomplete" in time (or failed), then the silence rule fired;
 * - `deadline_stt`: Smart Turn missed its deadline (SMART_TURN_DEADLINE_MS) and the recogniser's own
 *   end-of-speech signal (Deepgram `speech_final` / `UtteranceEnd`) about the caller's last words decided;
 * - `deadline_silence`: Smart Turn missed its deadline, no such signal came, and the silence rule fired.
 */
export const TURN_RULES = ['model', 'silence', 'deadline_stt', 'deadline_silence'] as const;

export type TurnRule = (typeof TURN_RULES)[number];

/** Where in the call an error happened. */
export type ErrorStage = 'stt' | 'llm' | 'tts' | 'smart_turn' | 'media' | 'transport';

export interface VadEventData {
  event: 'speech_start' | 'speech_end';
  /** Offset in the caller's audio, from the start of the call. */
  offsetMs: number;
}

export type TurnEventData =
  | { event: 'user_started_speaking' | 'user_paused'; turnId: number; offsetMs: number }
  | { event: 'smart_turn_result'; turnId: number; probability: number; complete: boolean }
  | {
      event: 'user_turn_complete';
      turnId: number;
      /** Smart Turn's probability; null when the silence rule decided without a model answer. */
      probability: number | null;
      rule: TurnRule;
      speechEndMs: number;
      decidedAtMs: number;
    };

export interface TranscriptEventData {
  /** Unique within the call; interim results and the final of one segment share it. */
  segmentId: string;
  speaker: TranscriptSpeaker;
  text: string;
  final: boolean;
  /** Offsets in the caller's audio (caller segments). */
  startMs?: number;
  endMs?: number;
  /** The user turn a bot segment answers. */
  turnId?: number;
  /** How a caller segment came: spoken (the default) or typed in the caller's app (LiveKit's `lk.chat`). */
  source?: 'speech' | 'text';
}

export interface BotStatusEventData {
  state: AgentState;
  /** Set once, when the bot has joined the room. */
  joined?: boolean;
  /** Provider labels, on joining. */
  providers?: { stt: string; llm: string; tts: string };
}

export type InterruptionEventData = (
  | { event: 'paused' }
  | { event: 'resumed'; falseInterruption: true }
  | {
      event: 'interrupted';
      turnId: number;
      /** Bot audio the caller had heard of the reply. */
      playedMs: number;
      heardText: string;
    }
  | { event: 'cancelled'; turnId: number; reason: string }
) & {
  /** `performance.now()` of this process when the engine decided; lets a caller in the same process time what it hears after. */
  decidedAtMonoMs?: number;
};

/** Milliseconds from the end of the caller's speech; null when the stage did not happen. */
export interface LatencyStagesMs {
  endOfUtterance: number | null;
  sttFinal: number | null;
  llmFirstToken: number | null;
  ttsFirstByte: number | null;
}

export interface LatencyEventData {
  turnId: number;
  /** End of caller speech to first bot audio out: the number callers feel. */
  responseMs: number | null;
  stagesMs: LatencyStagesMs;
  smartTurn: { probability: number | null; rule: TurnRule };
}

export interface ErrorEventData {
  stage: ErrorStage;
  code: EngineErrorCode;
  message?: string;
  /** True when the call went on unaffected (a reconnect, a retried request). */
  recovered?: boolean;
  retryable?: boolean;
  /** How long the stage was down, when it came back. */
  downMs?: number;
  droppedSamples?: number;
}

export interface HandoffRequestedEventData {
  reason: string | null;
  turnId: number;
}

export interface EndCallRequestedEventData {
  /** Becomes the `call_ended` reason: `bot_ended` (the bot said goodbye), `stt_unavailable`, `media_crashed`, `media_unavailable`. */
  reason: string;
  /** The user turn whose reply ended the call, when a reply did. */
  turnId?: number;
}

export interface WorkerRestartedEventData {
  fromWorkerId: number;
  toWorkerId: number;
  reason: string;
}

export interface BotModeEventData {
  mode: BotMode;
}

export interface CallEndedEventData {
  /**
   * Why the engine's part of the call ended: `caller_hung_up`, `caller_left` (dropped, past the grace
   * period), `caller_removed`, `room_deleted`, `bot_removed`, `connection_lost` (RoomEndReason in
   * call-transport.ts), `stopped`, `bot_ended`, `engine_closed`, ...
   */
  reason: string;
  /** The engine-side recording, when one was running. */
  recording?: { filePath: string; durationMs: number };
}

/** Event name -> its data. Add an event here and every consumer's switch is checked. */
export interface EngineEventDataMap {
  vad: VadEventData;
  turn: TurnEventData;
  transcript: TranscriptEventData;
  bot_status: BotStatusEventData;
  interruption: InterruptionEventData;
  latency: LatencyEventData;
  error: ErrorEventData;
  handoff_requested: HandoffRequestedEventData;
  end_call_requested: EndCallRequestedEventData;
  worker_restarted: WorkerRestartedEventData;
  bot_mode: BotModeEventData;
  call_ended: CallEndedEventData;
}

export type EngineEventType = keyof EngineEventDataMap;

/** Every event type, for schemas and exhaustive checks. */
export const ENGINE_EVENT_TYPES = [
  'vad',
  'turn',
  'transcript',
  'bot_status',
  'interruption',
  'latency',
  'error',
  'handoff_requested',
  'end_call_requested',
  'worker_restarted',
  'bot_mode',
  'call_ended',
] as const satisfies readonly EngineEventType[];

interface EventEnvelope<T extends EngineEventType> {
  callId: string;
  /** Increases by one per event of the call, from 1. */
  seq: number;
  /** Globally unique. */
  eventId: string;
  type: T;
  /** ISO 8601 UTC. */
  at: string;
  data: EngineEventDataMap[T];
}

/** One event of a call; narrow on `type` to reach its data. */
export type EngineEvent = { [T in EngineEventType]: EventEnvelope<T> }[EngineEventType];

/** The event of one type. */
export type EngineEventOf<T extends EngineEventType> = Extract<EngineEvent, { type: T }>;

export type EngineEventListener = (event: EngineEvent) => void;

export function isEventType(value: unknown): value is EngineEventType {
  return typeof value === 'string' && (ENGINE_EVENT_TYPES as readonly string[]).includes(value);
}
