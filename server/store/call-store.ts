/**
 * Call-history persistence contract. The control plane (`server/`) and the durable outbox depend on this
 * interface only; `embedded-store.ts` (node:sqlite, used when no MongoDB URI is configured) and
 * `mongo-store.ts` implement it, and `call-store.contract.ts` is the one test suite both must pass.
 *
 * Conventions:
 * - Every timestamp is an ISO 8601 UTC string as produced by `Date.prototype.toISOString()`
 *   (`2025-01-31T12:00:00.000Z`). Fixed width, so string order is time order in both backends, and it
 *   crosses JSON/REST without conversion. Stores normalise any parseable date string they receive.
 * - Writes that can be replayed (events, segments, webhooks, participants, latencies, idempotent create)
 *   are idempotent by a producer-chosen id: a replay writes nothing and does not fail.
 * - Errors are `VoiceError`s from `./errors.ts`; `retryable: true` means the database was unreachable.
 */
import type { EngineEvent, TurnRule } from '../../engine/events.ts';

/** Lifecycle of a call. `human` = a human agent has taken over; `ended` is terminal by convention. */
export type CallState = 'created' | 'active' | 'human' | 'ended';

/** What the bot does in the room: speaks, only transcribes (after a human took over), or has left. */
export type BotMode = 'active' | 'transcriber' | 'removed';

/** `dispatcher`: a human who took the call over (handoff). */
export type ParticipantRole = 'caller' | 'bot' | 'dispatcher' | 'observer';

export type Speaker = 'caller' | 'bot' | 'dispatcher';

export interface CallParticipant {
  /** LiveKit participant identity. At most one entry per identity is "present" (no `leftAt`) at a time. */
  identity: string;
  role: ParticipantRole;
  joinedAt: string;
  /** Set when the participant left; a later rejoin appends a new entry. */
  leftAt?: string;
}

/** Per-turn latency summary appended by the engine after each bot response. */
export interface TurnLatency {
  /** Unique within the call; appending the same `turnId` twice keeps the first. */
  turnId: string;
  /** When the turn ended (caller stopped speaking). */
  at: string;
  /** End of caller speech to first bot audio out, the number users feel. */
  responseMs?: number;
  /** Per-stage durations, e.g. `{ vadMs, turnMs, sttMs, llmFirstTokenMs, ttsFirstByteMs }`. */
  stagesMs?: Record<string, number>;
  /** Which rule ended the caller's turn, and Smart Turn's probability (null when it had not answered). */
  smartTurn?: { rule: TurnRule; probability: number | null };
}

export type RecordingStatus = 'starting' | 'active' | 'ended' | 'failed' | 'unavailable';

export interface RecordingInfo {
  status: RecordingStatus;
  /** LiveKit egress id, when egress was started. */
  egressId?: string;
  /** Where the file ended up (URL or path), once known. */
  location?: string;
  startedAt?: string;
  endedAt?: string;
  /** Human-readable reason for `failed` / `unavailable`. */
  error?: string;
}

export interface CallRecord {
  callId: string;
  roomName: string;
  state: CallState;
  botMode: BotMode;
  createdAt: string;
  /** Set by the store on every change. */
  updatedAt: string;
  endedAt?: string;
  endReason?: string;
  participants: CallParticipant[];
  /** Free object from the dispatch system (caller number, campaign, ...). Must be JSON-serialisable. */
  metadata: Record<string, unknown>;
  /** Appended per turn, oldest first; capped at `MAX_LATENCIES_PER_CALL` (oldest dropped). */
  latencies: TurnLatency[];
  /** The key the call was created with, if any. */
  idempotencyKey?: string;
  /** Who created the call (the API key's name); `listCalls({ owner })` returns only theirs. Never changes. */
  owner?: string;
  recording?: RecordingInfo;
  /** Incremented by every change; usable as an ETag. Starts at 1. */
  rev: number;
}

/** Input of `createCall`; the store fills the rest (`state` 'created', `botMode` 'active', timestamps). */
export interface NewCall {
  /** Generated (UUID) when absent. */
  callId?: string;
  roomName: string;
  state?: CallState;
  botMode?: BotMode;
  /** Defaults to now. */
  createdAt?: string;
  participants?: CallParticipant[];
  metadata?: Record<string, unknown>;
  recording?: RecordingInfo;
  owner?: string;
}

/**
 * Fields `updateCall` may change. `metadata` is merged shallowly (a key set to `null` is removed);
 * `recording` is merged shallowly too. Participants and latencies have their own idempotent methods.
 */
export interface CallPatch {
  state?: CallState;
  botMode?: BotMode;
  endedAt?: string;
  endReason?: string;
  recording?: Partial<RecordingInfo>;
  metadata?: Record<string, unknown>;
}

export interface UpdateCallOptions {
  /**
   * Compare-and-set guard: apply the patch only if the call's current state is one of these, else throw
   * `CallStateConflictError` (409). Lets the API make transitions such as "end unless already ended"
   * safe under concurrent requests without transactions.
   */
  ifState?: CallState[];
}

/** A final transcript segment. Interim (`final: false`) segments are ignored by `appendSegments`. */
export interface TranscriptSegment {
  callId: string;
  /** Unique within the call, chosen by the producer so replays are idempotent. */
  segmentId: string;
  /** Increasing per call; listing order. */
  seq: number;
  speaker: Speaker;
  text: string;
  /** Offsets from the start of the call. */
  startMs: number;
  endMs: number;
  final: boolean;
}

/**
 * A stored call event: exactly the engine's event (`engine/events.ts`), so what a client reads back from
 * history has the shape it was emitted with. `eventId` is globally unique and `seq` increases per call.
 */
export type CallEvent = EngineEvent;

export interface ListCallsQuery {
  state?: CallState;
  /** Only calls created with this `owner` (calls without one never match). */
  owner?: string;
  /** 1..MAX_LIST_LIMIT; default DEFAULT_LIST_LIMIT. */
  limit?: number;
  /** `nextCursor` of a previous page; returns calls created strictly before it. */
  before?: string;
}

export interface CallPage {
  /** Newest first (createdAt desc, then callId desc). */
  calls: CallRecord[];
  /** Present when more calls may follow; pass as `before`. Opaque. */
  nextCursor?: string;
}

export interface ListBySeqQuery {
  /** Only items with `seq` greater than this. */
  afterSeq?: number;
  /** 1..MAX_LIST_LIMIT; default: all (segments) / DEFAULT_LIST_LIMIT (events). */
  limit?: number;
}

export interface AppendResult {
  /** Items newly stored; replays and ignored interim segments are not counted. */
  written: number;
}

export interface CreateCallResult {
  call: CallRecord;
  /** False when the idempotency key had already created a call, which is returned instead. */
  created: boolean;
}

export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 500;
export const MAX_LATENCIES_PER_CALL = 1000;

export interface CallStore {
  /** 'embedded' or 'mongodb', for /readyz and logs. */
  readonly kind: string;

  /**
   * Creates a call. With `idempotencyKey`, a repeat of the same key returns the call created the first
   * time (`created: false`) instead of a new one, even across restarts. Without a key, an existing
   * `callId` throws `CallExistsError` (409).
   */
  createCall(input: NewCall, options?: { idempotencyKey?: string }): Promise<CreateCallResult>;

  /** The call, or `null` when unknown. */
  getCall(callId: string): Promise<CallRecord | null>;

  /**
   * The call `createCall` made with this idempotency key, or `null` when the key is unknown or was
   * released. A read: lets the API answer a retry before it checks anything else (capacity).
   */
  findCallByIdempotencyKey(idempotencyKey: string): Promise<CallRecord | null>;

  /**
   * Frees the key if it still belongs to `callId`, so that the next `createCall` with it creates a new
   * call (the API releases the key of a call that failed to start, so that a retry runs again). The call
   * itself is kept, `idempotencyKey` field included. Returns whether the key was freed.
   */
  releaseIdempotencyKey(idempotencyKey: string, callId: string): Promise<boolean>;

  listCalls(query?: ListCallsQuery): Promise<CallPage>;

  /** Applies the patch and returns the updated call. Throws `CallNotFoundError` (404). */
  updateCall(callId: string, patch: CallPatch, options?: UpdateCallOptions): Promise<CallRecord>;

  /**
   * Records a participant joining. Idempotent: if the identity is already present (no `leftAt`), the
   * call is returned unchanged. Throws `CallNotFoundError`.
   */
  addParticipant(callId: string, participant: CallParticipant): Promise<CallRecord>;

  /** Sets `leftAt` on the identity's present entry; a no-op if it is not present. */
  markParticipantLeft(callId: string, identity: string, leftAt?: string): Promise<CallRecord>;

  /** Appends a per-turn latency summary; idempotent by `turnId`. Throws `CallNotFoundError`. */
  appendLatency(callId: string, latency: TurnLatency): Promise<CallRecord>;

  /**
   * Stores events, idempotent by `eventId`. Does not require the call to exist (the outbox may deliver
   * before the create is visible). Written in array order.
   */
  appendEvents(events: CallEvent[]): Promise<AppendResult>;

  /** Stores final segments, idempotent by `(callId, segmentId)`; interim ones are skipped. */
  appendSegments(segments: TranscriptSegment[]): Promise<AppendResult>;

  /** Ordered by `seq` ascending. */
  listEvents(callId: string, query?: ListBySeqQuery): Promise<CallEvent[]>;

  /** Ordered by `seq` ascending. */
  listSegments(callId: string, query?: ListBySeqQuery): Promise<TranscriptSegment[]>;

  /** True the first time this webhook id is seen, false on every repeat (for idempotent handlers). */
  markWebhookProcessed(webhookId: string): Promise<boolean>;

  /** Whether `markWebhookProcessed` already recorded this id (a read, for handlers that apply, then mark). */
  isWebhookProcessed(webhookId: string): Promise<boolean>;

  /** Resolves when the database answers; throws `StoreUnavailableError` otherwise. */
  ping(): Promise<void>;

  /** Idempotent. Later calls throw `ClosedError`. */
  close(): Promise<void>;
}
