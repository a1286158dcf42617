import type { Static } from '@sinclair/typebox';
import type { Access } from './access.ts';
import { ApiError } from './errors.ts';
import { INTERNAL_METADATA_PREFIX, type CallDetail, type CallSummary } from './schemas.ts';
import type { CallRecord, CallStore, TranscriptSegment } from './store/call-store.ts';

/** Bookkeeping the control plane keeps in a call's metadata (hidden from clients by the prefix). */
export const META_REQUEST_HASH = `${INTERNAL_METADATA_PREFIX}RequestHash`;
export const META_CALLER_IDENTITY = `${INTERNAL_METADATA_PREFIX}CallerIdentity`;
export const META_API_KEY = `${INTERNAL_METADATA_PREFIX}ApiKey`;

/** `endReason` of a call whose creation failed half-way (its Idempotency-Key is released: a retry runs again). */
export const SETUP_FAILED = 'setup_failed';

export function publicMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(metadata)) if (!key.startsWith(INTERNAL_METADATA_PREFIX)) out[key] = value;
  return out;
}

export function callerIdentityOf(call: CallRecord): string | undefined {
  const identity = call.metadata[META_CALLER_IDENTITY];
  return typeof identity === 'string' ? identity : undefined;
}

export function callSummary(call: CallRecord): Static<typeof CallSummary> {
  return {
    callId: call.callId,
    roomName: call.roomName,
    state: call.state,
    botMode: call.botMode,
    createdAt: call.createdAt,
    updatedAt: call.updatedAt,
    endedAt: call.endedAt,
    endReason: call.endReason,
    callerIdentity: callerIdentityOf(call),
    participants: call.participants,
    metadata: publicMetadata(call.metadata),
    recording: call.recording,
  };
}

export function callDetail(call: CallRecord, segments: TranscriptSegment[]): Static<typeof CallDetail> {
  return {
    ...callSummary(call),
    transcript: segments.map(({ segmentId, seq, speaker, text, startMs, endMs }) => ({ segmentId, seq, speaker, text, startMs, endMs })),
    latencies: call.latencies,
  };
}

/** Name of the API key that created the call (`owner`; older records kept it only in metadata). */
export function ownerOf(call: CallRecord): string | undefined {
  const fromMetadata = call.metadata[META_API_KEY];
  return call.owner ?? (typeof fromMetadata === 'string' ? fromMetadata : undefined);
}

/** A key sees the calls it created; an `admin` key sees them all. */
export function canSee(access: Access, call: CallRecord): boolean {
  return access.admin || ownerOf(call) === access.name;
}

/**
 * The call, or 404 `VE_CALL_NOT_FOUND` when it does not exist or belongs to another key: the same answer
 * either way, so a key cannot learn which call ids exist.
 */
export async function loadCall(store: CallStore, callId: string, access: Access | undefined): Promise<CallRecord> {
  const call = await store.getCall(callId);
  if (call === null || access === undefined || !canSee(access, call)) throw new ApiError('VE_CALL_NOT_FOUND', `call ${callId} not found`);
  return call;
}

/** 409 `VE_CALL_ENDED` for operations that need a live call. */
export function assertNotEnded(call: CallRecord): void {
  if (call.state === 'ended') throw new ApiError('VE_CALL_ENDED', `call ${call.callId} has ended`);
}
