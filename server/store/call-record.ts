/**
 * Pure functions on call records, shared by both stores so that validation, defaults and merge rules
 * cannot drift apart. Each store only decides how to read and write atomically around them.
 */
import { randomUUID } from 'node:crypto';
import {
  DEFAULT_LIST_LIMIT,
  MAX_LATENCIES_PER_CALL,
  MAX_LIST_LIMIT,
  type CallEvent,
  type CallParticipant,
  type CallPatch,
  type CallRecord,
  type CallState,
  type NewCall,
  type TranscriptSegment,
  type TurnLatency,
} from './call-store.ts';
import { StoreInvalidInputError } from './errors.ts';
import { isEventType } from '../../engine/events.ts';

const CALL_STATES: readonly CallState[] = ['created', 'active', 'human', 'ended'];
const BOT_MODES = ['active', 'transcriber', 'removed'];
const ROLES = ['caller', 'bot', 'dispatcher', 'observer'];
const SPEAKERS = ['caller', 'bot', 'dispatcher'];

/** Normalises to `toISOString()` form so string comparison stays time order. */
export function isoTime(value: string | Date | undefined, field: string, fallback?: Date): string {
  if (value === undefined) {
    if (fallback) return fallback.toISOString();
    throw new StoreInvalidInputError(`${field} is required`);
  }
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new StoreInvalidInputError(`${field} is not a valid date: ${String(value)}`);
  return date.toISOString();
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new StoreInvalidInputError(`${field} must be a non-empty string`);
  return value;
}

function requireOneOf(value: unknown, allowed: readonly string[], field: string): void {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new StoreInvalidInputError(`${field} must be one of ${allowed.join(', ')}`);
  }
}

function requireFinite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new StoreInvalidInputError(`${field} must be a finite number`);
  return value;
}

export function checkState(state: CallState): void {
  requireOneOf(state, CALL_STATES, 'state');
}

export function normaliseParticipant(p: CallParticipant): CallParticipant {
  requireString(p.identity, 'participant.identity');
  requireOneOf(p.role, ROLES, 'participant.role');
  const out: CallParticipant = { identity: p.identity, role: p.role, joinedAt: isoTime(p.joinedAt, 'participant.joinedAt', new Date()) };
  if (p.leftAt !== undefined) out.leftAt = isoTime(p.leftAt, 'participant.leftAt');
  return out;
}

export function newCallRecord(input: NewCall, idempotencyKey: string | undefined, now: Date): CallRecord {
  requireString(input.roomName, 'roomName');
  const state = input.state ?? 'created';
  checkState(state);
  const botMode = input.botMode ?? 'active';
  requireOneOf(botMode, BOT_MODES, 'botMode');
  const createdAt = isoTime(input.createdAt, 'createdAt', now);
  const record: CallRecord = {
    callId: input.callId === undefined ? randomUUID() : requireString(input.callId, 'callId'),
    roomName: input.roomName,
    state,
    botMode,
    createdAt,
    updatedAt: now.toISOString(),
    participants: (input.participants ?? []).map(normaliseParticipant),
    metadata: { ...(input.metadata ?? {}) },
    latencies: [],
    rev: 1,
  };
  if (idempotencyKey !== undefined) record.idempotencyKey = requireString(idempotencyKey, 'idempotencyKey');
  if (input.owner !== undefined) record.owner = requireString(input.owner, 'owner');
  if (input.recording !== undefined) record.recording = { ...input.recording };
  return record;
}

/** Returns a new record with the patch applied; never mutates `call`. */
export function applyPatch(call: CallRecord, patch: CallPatch, now: Date): CallRecord {
  const next: CallRecord = { ...call, updatedAt: now.toISOString(), rev: call.rev + 1 };
  if (patch.state !== undefined) {
    checkState(patch.state);
    next.state = patch.state;
  }
  if (patch.botMode !== undefined) {
    requireOneOf(patch.botMode, BOT_MODES, 'botMode');
    next.botMode = patch.botMode;
  }
  if (patch.endedAt !== undefined) next.endedAt = isoTime(patch.endedAt, 'endedAt');
  if (patch.endReason !== undefined) next.endReason = patch.endReason;
  if (patch.recording !== undefined) {
    const merged = { ...(call.recording ?? {}), ...patch.recording };
    if (merged.status === undefined) throw new StoreInvalidInputError('recording.status is required');
    next.recording = merged as CallRecord['recording'];
  }
  if (patch.metadata !== undefined) {
    const metadata = { ...call.metadata };
    // null deletes, so a PATCH can remove a key without replacing the whole object.
    for (const [key, value] of Object.entries(patch.metadata)) {
      if (value === null) delete metadata[key];
      else metadata[key] = value;
    }
    next.metadata = metadata;
  }
  return next;
}

/** `null` when nothing changes (identity already present), so stores can skip the write. */
export function withParticipant(call: CallRecord, participant: CallParticipant, now: Date): CallRecord | null {
  const p = normaliseParticipant(participant);
  if (call.participants.some((existing) => existing.identity === p.identity && existing.leftAt === undefined)) return null;
  return { ...call, participants: [...call.participants, p], updatedAt: now.toISOString(), rev: call.rev + 1 };
}

export function withParticipantLeft(call: CallRecord, identity: string, leftAt: string | undefined, now: Date): CallRecord | null {
  const index = call.participants.findIndex((p) => p.identity === identity && p.leftAt === undefined);
  if (index < 0) return null;
  const participants = call.participants.slice();
  participants[index] = { ...participants[index], leftAt: isoTime(leftAt, 'leftAt', now) };
  return { ...call, participants, updatedAt: now.toISOString(), rev: call.rev + 1 };
}

/** Validates a latency summary; `at` defaults to now. */
export function normaliseLatency(latency: TurnLatency, now: Date = new Date()): TurnLatency {
  requireString(latency.turnId, 'latency.turnId');
  const entry: TurnLatency = { ...latency, at: isoTime(latency.at, 'latency.at', now) };
  if (entry.responseMs !== undefined) requireFinite(entry.responseMs, 'latency.responseMs');
  for (const [stage, ms] of Object.entries(entry.stagesMs ?? {})) requireFinite(ms, `latency.stagesMs.${stage}`);
  return entry;
}

export function withLatency(call: CallRecord, latency: TurnLatency, now: Date): CallRecord | null {
  const entry = normaliseLatency(latency, now);
  if (call.latencies.some((l) => l.turnId === entry.turnId)) return null;
  const latencies = [...call.latencies, entry];
  // A very long call must not grow one document without bound (MongoDB's 16 MB limit).
  if (latencies.length > MAX_LATENCIES_PER_CALL) latencies.splice(0, latencies.length - MAX_LATENCIES_PER_CALL);
  return { ...call, latencies, updatedAt: now.toISOString(), rev: call.rev + 1 };
}

export function normaliseEvent(e: CallEvent): CallEvent {
  requireString(e.callId, 'event.callId');
  requireString(e.eventId, 'event.eventId');
  requireFinite(e.seq, 'event.seq');
  if (!isEventType(e.type)) throw new StoreInvalidInputError(`event.type must be one of the engine's event types (got ${String(e.type)})`);
  if (e.data === null || typeof e.data !== 'object') throw new StoreInvalidInputError('event.data must be an object');
  return { callId: e.callId, eventId: e.eventId, seq: e.seq, type: e.type, at: isoTime(e.at, 'event.at'), data: e.data } as CallEvent;
}

/** `null` for interim segments, which are not stored. */
export function normaliseSegment(s: TranscriptSegment): TranscriptSegment | null {
  if (s.final !== true) return null;
  requireString(s.callId, 'segment.callId');
  requireString(s.segmentId, 'segment.segmentId');
  requireFinite(s.seq, 'segment.seq');
  requireOneOf(s.speaker, SPEAKERS, 'segment.speaker');
  if (typeof s.text !== 'string') throw new StoreInvalidInputError('segment.text must be a string');
  return {
    callId: s.callId,
    segmentId: s.segmentId,
    seq: s.seq,
    speaker: s.speaker,
    text: s.text,
    startMs: requireFinite(s.startMs, 'segment.startMs'),
    endMs: requireFinite(s.endMs, 'segment.endMs'),
    final: true,
  };
}

export function listLimit(limit: number | undefined, fallback: number = DEFAULT_LIST_LIMIT): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new StoreInvalidInputError(`limit must be an integer in 1..${MAX_LIST_LIMIT}`);
  }
  return limit;
}

export interface ListCursor {
  createdAt: string;
  callId: string;
}

export function encodeCursor(call: Pick<CallRecord, 'createdAt' | 'callId'>): string {
  return Buffer.from(JSON.stringify([call.createdAt, call.callId])).toString('base64url');
}

export function decodeCursor(cursor: string): ListCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { createdAt: parsed[0], callId: parsed[1] };
    }
  } catch {
    // fall through to the typed error
  }
  throw new StoreInvalidInputError('invalid cursor');
}
