import { createHash, randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import { VoiceError } from '../../engine/errors.ts';
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

const CreateCallBody = Type.Object(
  {
    callerIdentity: Type.Optional(ParticipantIdentity('LiveKit identity of the caller; generated when absent')),
    callerName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    instructions: Type.Optional(Type.String({ maxLength: 16_000, description: 'System prompt for the bot' })),
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
 * Calls: create (room, caller token, bot), list, read, end. Creation honours `Idempotency-Key` per API key:
 * the same key with the same body answers with the same call (a freshly minted token for the same
 * identity); with another body it is refused with 409 `VE_IDEMPOTENCY_MISMATCH`.
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

  app.post<{ Body: CreateCallBody; Headers: Static<typeof CreateCallHeaders> }>(
    '/v1/calls',
    {
      schema: {
        tags: ['calls'],
        summary: 'Create a call: LiveKit room, caller token, bot',
        headers: CreateCallHeaders,
        body: CreateCallBody,
        response: { 201: CreateCallResponse, ...errors(...WRITE_ERRORS, 409, 413, 415, 502, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const capacity = engine.capacity();
      if (!capacity.acceptingCalls) {
        metrics.callsCreated.inc({ result: 'at_capacity' });
        throw new ApiError('VE_AT_CAPACITY', `engine at capacity (${capacity.activeCalls}/${capacity.maxCalls} calls)`, {
          headers: { 'retry-after': String(AT_CAPACITY_RETRY_AFTER_S) },
        });
      }

      const fingerprint = requestFingerprint(body);
      const idempotencyKey = request.headers['idempotency-key'];
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
        { callId, roomName: `call-${callId}`, metadata, owner: request.apiKeyName },
        // Scoped per API key: two dispatch systems choosing the same key must not see each other's calls.
        idempotencyKey === undefined ? {} : { idempotencyKey: `${request.apiKeyName}:${idempotencyKey}` },
      );

      if (!created) {
        if (call.metadata[META_REQUEST_HASH] !== fingerprint) throw new ApiError('VE_IDEMPOTENCY_MISMATCH');
        if (call.state === 'ended' && call.endReason === SETUP_FAILED) {
          throw new ApiError('VE_CALL_ENDED', 'the call created with this Idempotency-Key failed to start; use a new key');
        }
        metrics.callsCreated.inc({ result: 'replayed' });
        reply.header('idempotent-replayed', 'true');
        return reply.status(201).send(await answer(call));
      }

      const failSetup = async (err: unknown): Promise<never> => {
        await bestEffort(request.log, 'deleteRoom after failed setup', () => livekit.deleteRoom(call.roomName));
        await bestEffort(request.log, 'mark call ended after failed setup', () =>
          store.updateCall(call.callId, { state: 'ended', endedAt: new Date().toISOString(), endReason: SETUP_FAILED }),
        );
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
        await engine.startBot({ callId: call.callId, roomName: call.roomName, callerIdentity, instructions: body.instructions });
      } catch (err) {
        if (err instanceof VoiceError && err.code === 'VE_AT_CAPACITY') {
          // Lost the admission race against another create: same answer as the early check.
          return failSetup(new ApiError('VE_AT_CAPACITY', undefined, { cause: err, headers: { 'retry-after': String(AT_CAPACITY_RETRY_AFTER_S) } }));
        }
        return failSetup(err instanceof ApiError ? err : new ApiError('VE_BOT_START_FAILED', undefined, { cause: err }));
      }
      metrics.callsCreated.inc({ result: 'created' });
      return reply.status(201).send(response);
    },
  );

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
