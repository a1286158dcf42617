import { createHash, randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VoiceError } from '../../engine/errors.ts';
import { callRoomName } from '../../engine/transport/call-room.ts';
import {
  META_API_KEY,
  META_CALLER_IDENTITY,
  META_REQUEST_HASH,
  SETUP_FAILED,
  assertNotEnded,
  callDetail,
  callSummary,
  callerIdentityOf,
  loadCall,
} from '../call-view.ts';
import { canonicalJson } from '../canonical-json.ts';
import type { AppContext } from '../context.ts';
import { stopRecordingWithBot } from './recording.ts';
import { ApiError } from '../errors.ts';
import { COMMON_ERRORS, CallDetail, CallIdParams, CallMetadata, CallState, CallSummary, ListCursor, ParticipantIdentity, WRITE_ERRORS, errors } from '../schemas.ts';
import { MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT, type CallRecord } from '../store/call-store.ts';

export interface CallsOptions extends Record<string, unknown> {
  ctx: AppContext;
}

/** `Retry-After` sent with 503 `VE_AT_CAPACITY`: long enough for a call or two to end. */
export const AT_CAPACITY_RETRY_AFTER_S = 5;
/** `Retry-After` sent with 409 `VE_IDEMPOTENCY_IN_FLIGHT`: setting a call up takes about a second. */
export const IN_FLIGHT_RETRY_AFTER_S = 1;

const CreateCallBody = Type.Object(
  {
    callerIdentity: Type.Optional(ParticipantIdentity('LiveKit identity of the caller; generated when absent')),
    callerName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    instructions: Type.Optional(Type.String({ maxLength: 16_000, description: 'System prompt for the bot' })),
    greeting: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2000, description: "Said once when the caller's first audio arrives; interruptible like any reply" }),
    ),
    metadata: Type.Optional(CallMetadata),
  },
  { additionalProperties: false },
);
type CreateCallBody = Static<typeof CreateCallBody>;

const CreateCallHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'Same key and body: same answer' }),
  ),
});

const CreateCallResponse = Type.Object({
  callId: Type.String(),
  roomName: Type.String(),
  livekitUrl: Type.String(),
  callerIdentity: Type.String(),
  callerToken: Type.String(),
  callerTokenExpiresAt: Type.String({ format: 'date-time' }),
});

const ListCallsQuery = Type.Object(
  {
    state: Type.Optional(CallState),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT })),
    cursor: Type.Optional(ListCursor),
  },
  { additionalProperties: false },
);

const CallPage = Type.Object({ calls: Type.Array(CallSummary), nextCursor: Type.Optional(ListCursor) });

const EndCallResponse = Type.Composite([CallSummary, Type.Object({ roomDeleted: Type.Boolean(), botStopped: Type.Boolean() })]);

export function requestFingerprint(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body ?? {})).digest('hex');
}

async function bestEffort(log: FastifyBaseLogger, what: string, op: () => Promise<unknown>): Promise<boolean> {
  try {
    await op();
    return true;
  } catch (err) {
    log.warn({ err }, `${what} failed`);
    return false;
  }
}

/**
 * Calls: create (room, caller token, bot), list, read, end. Creation honours `Idempotency-Key` per API key,
 * as draft-ietf-httpapi-idempotency-key-header describes: the same key with the same body answers with the
 * original 201 and body (a freshly minted caller token for the same identity) and `Idempotent-Replayed:
 * true`, even while the engine is full; with another body, 422 `VE_IDEMPOTENCY_MISMATCH`; while the first
 * request is still running, 409 `VE_IDEMPOTENCY_IN_FLIGHT`. Unlike the draft's "replay errors too", a
 * call that failed to start releases its key, so that a retry (every setup failure is retryable) runs again.
 */
export async function callsRoutes(app: FastifyInstance, { ctx }: CallsOptions): Promise<void> {
  const { config, store, engine, livekit, metrics } = ctx;

  async function answer(call: CallRecord) {
    const callerIdentity = callerIdentityOf(call) ?? `caller-${call.callId}`;
    const minted = await livekit.mintToken({
      role: 'caller',
      roomName: call.roomName,
      identity: callerIdentity,
      name: typeof call.metadata.callerName === 'string' ? call.metadata.callerName : undefined,
      ttlS: config.livekit.tokenTtlS,
    });
    return {
      callId: call.callId,
      roomName: call.roomName,
      livekitUrl: livekit.url,
      callerIdentity,
      callerToken: minted.token,
      callerTokenExpiresAt: minted.expiresAt,
    };
  }

  /**
   * Scoped keys whose creation is running in this process. Checked and claimed synchronously, so a
   * concurrent retry cannot race the first attempt; another node's attempt is not seen (see ERRORS.md).
   */
  const inFlight = new Set<string>();

  /**
   * A request whose key already made a call: 422 for another body, the original answer again (201,
   * `Idempotent-Replayed: true`, a freshly minted caller token), or `null` when that call failed to start:
   * its key is then released and this request creates the call anew.
   */
  async function answerExisting(call: CallRecord, fingerprint: string, key: string, reply: FastifyReply): Promise<FastifyReply | null> {
    if (call.metadata[META_REQUEST_HASH] !== fingerprint) {
      metrics.callsCreated.inc({ result: 'idempotency_mismatch' });
      throw new ApiError('VE_IDEMPOTENCY_MISMATCH');
    }
    if (call.state === 'ended' && call.endReason === SETUP_FAILED) {
      // The failed attempt could not release its key itself (store down at the time): do it now.
      await store.releaseIdempotencyKey(key, call.callId);
      return null;
    }
    metrics.callsCreated.inc({ result: 'replayed' });
    reply.header('idempotent-replayed', 'true');
    return reply.status(201).send(await answer(call));
  }

  app.post<{ Body: CreateCallBody; Headers: Static<typeof CreateCallHeaders> }>(
    '/v1/calls',
    {
      schema: {
        tags: ['calls'],
        summary: 'Create a call: LiveKit room, caller token, bot',
        headers: CreateCallHeaders,
        body: CreateCallBody,
        response: { 201: CreateCallResponse, ...errors(...WRITE_ERRORS, 409, 413, 415, 422, 502, 503) },
      },
    },
    async (request, reply) => {
      const header = request.headers['idempotency-key'];
      // Scoped per API key: two dispatch systems choosing the same key must not see each other's calls.
      const key = header === undefined ? undefined : `${request.apiKeyName}:${header}`;
      if (key === undefined) return createCall(request, reply, undefined);
      if (inFlight.has(key)) {
        metrics.callsCreated.inc({ result: 'in_flight' });
        throw new ApiError('VE_IDEMPOTENCY_IN_FLIGHT', undefined, { headers: { 'retry-after': String(IN_FLIGHT_RETRY_AFTER_S) } });
      }
      inFlight.add(key);
      try {
        return await createCall(request, reply, key);
      } finally {
        inFlight.delete(key);
      }
    },
  );

  /**
   * The key is looked up before anything else, so a retry of a call that exists is answered even while
   * the engine is full; only then is capacity checked and the call created.
   */
  async function createCall(
    request: FastifyRequest<{ Body: CreateCallBody }>,
    reply: FastifyReply,
    key: string | undefined,
  ): Promise<FastifyReply> {
    const body = request.body;
    const fingerprint = requestFingerprint(body);
    if (key !== undefined) {
      const existing = await store.findCallByIdempotencyKey(key);
      const replayed = existing === null ? null : await answerExisting(existing, fingerprint, key, reply);
      if (replayed !== null) return replayed;
    }

    const capacity = engine.capacity();
    if (!capacity.acceptingCalls) {
      metrics.callsCreated.inc({ result: 'at_capacity' });
      throw new ApiError('VE_AT_CAPACITY', `engine at capacity (${capacity.activeCalls}/${capacity.maxCalls} calls)`, {
        headers: { 'retry-after': String(AT_CAPACITY_RETRY_AFTER_S) },
      });
    }

    const callId = randomUUID();
    const callerIdentity = body.callerIdentity ?? `caller-${callId}`;
    const metadata: Record<string, unknown> = {
      ...(body.metadata ?? {}),
      [META_REQUEST_HASH]: fingerprint,
      [META_CALLER_IDENTITY]: callerIdentity,
      [META_API_KEY]: request.apiKeyName,
    };
    if (body.callerName !== undefined) metadata.callerName = body.callerName;
    const { call, created } = await store.createCall(
      { callId, roomName: callRoomName(callId), metadata, owner: request.apiKeyName },
      key === undefined ? {} : { idempotencyKey: key },
    );

    if (!created) {
      // Another node created a call with this key between the lookup and the insert.
      const replayed = await answerExisting(call, fingerprint, key!, reply);
      if (replayed !== null) return replayed;
      throw new ApiError('VE_IDEMPOTENCY_IN_FLIGHT', undefined, { headers: { 'retry-after': String(IN_FLIGHT_RETRY_AFTER_S) } });
    }

    const failSetup = async (err: unknown): Promise<never> => {
      await bestEffort(request.log, 'deleteRoom after failed setup', () => livekit.deleteRoom(call.roomName));
      await bestEffort(request.log, 'mark call ended after failed setup', () =>
        store.updateCall(call.callId, { state: 'ended', endedAt: new Date().toISOString(), endReason: SETUP_FAILED }),
      );
      // Every setup failure is retryable, so a retry with the same key must run again, not replay the
      // error: the key is freed (if this fails, the retry frees it on seeing SETUP_FAILED).
      if (key !== undefined) {
        await bestEffort(request.log, 'release Idempotency-Key after failed setup', () => store.releaseIdempotencyKey(key, call.callId));
      }
      metrics.callsCreated.inc({ result: 'failed' });
      throw err;
    };

    try {
      await livekit.createRoom(call.roomName, { callId: call.callId });
    } catch (err) {
      return failSetup(err);
    }
    let response;
    try {
      response = await answer(call);
      await engine.startBot({ callId: call.callId, roomName: call.roomName, callerIdentity, instructions: body.instructions, greeting: body.greeting });
    } catch (err) {
      if (err instanceof VoiceError && err.code === 'VE_AT_CAPACITY') {
        // Lost the admission race against another create: same answer as the early check.
        return failSetup(new ApiError('VE_AT_CAPACITY', undefined, { cause: err, headers: { 'retry-after': String(AT_CAPACITY_RETRY_AFTER_S) } }));
      }
      return failSetup(err instanceof ApiError ? err : new ApiError('VE_BOT_START_FAILED', undefined, { cause: err }));
    }
    metrics.callsCreated.inc({ result: 'created' });
    return reply.status(201).send(response);
  }

  app.get<{ Querystring: Static<typeof ListCallsQuery> }>(
    '/v1/calls',
    {
      schema: {
        tags: ['calls'],
        summary: 'List calls, newest first',
        querystring: ListCallsQuery,
        response: { 200: CallPage, ...errors(...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const { state, limit, cursor } = request.query;
      // Filtered by the store, not after it: every page is full and the cursor stays valid.
      const owner = request.access?.admin === true ? undefined : (request.access?.name ?? '');
      const page = await store.listCalls({ state, limit, before: cursor, owner });
      return { calls: page.calls.map(callSummary), nextCursor: page.nextCursor };
    },
  );

  app.get<{ Params: CallIdParams }>(
    '/v1/calls/:id',
    {
      schema: {
        tags: ['calls'],
        summary: 'A call with its participants, transcript and latencies',
        params: CallIdParams,
        response: { 200: CallDetail, ...errors(...COMMON_ERRORS, 404) },
      },
    },
    async (request) => {
      const call = await loadCall(store, request.params.id, request.access);
      return callDetail(call, await store.listSegments(call.callId));
    },
  );

  app.post<{ Params: CallIdParams }>(
    '/v1/calls/:id/end',
    {
      schema: {
        tags: ['calls'],
        summary: 'End a call: stop the bot, delete the room (idempotent; retry to finish a failed clean-up)',
        params: CallIdParams,
        response: { 200: EndCallResponse, ...errors(...WRITE_ERRORS, 404, 502) },
      },
    },
    async (request) => {
      let call = await loadCall(store, request.params.id, request.access);
      if (call.state !== 'ended') {
        try {
          call = await store.updateCall(
            call.callId,
            { state: 'ended', endedAt: new Date().toISOString(), endReason: 'ended_by_api' },
            { ifState: ['created', 'active', 'human'] },
          );
        } catch (err) {
          // Ended concurrently (webhook or another request): fine, clean up all the same.
          if (!(err instanceof VoiceError && err.code === 'VE_CALL_STATE_CONFLICT')) throw err;
          call = await loadCall(store, call.callId, request.access);
        }
      }
      await stopRecordingWithBot(ctx, call, request.log);
      const botStopped = await bestEffort(request.log, 'stopBot', () => engine.stopBot(call.callId));
      // The room is what keeps the caller connected, so a failed delete is reported (502) for a retry.
      await livekit.deleteRoom(call.roomName);
      return { ...callSummary(call), roomDeleted: true, botStopped };
    },
  );
}
