import { join, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Access } from '../access.ts';
import { assertNotEnded, loadCall } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { CallIdParams, Recording, WRITE_ERRORS, errors } from '../schemas.ts';
import type { CallRecord } from '../store/call-store.ts';

export interface RecordingOptions extends Record<string, unknown> {
  ctx: AppContext;
}

const EgressBody = Type.Object({ action: Type.Union([Type.Literal('start'), Type.Literal('stop')]) }, { additionalProperties: false });

const RecordingResponse = Type.Object({
  callId: Type.String(),
  recording: Recording,
  durationMs: Type.Optional(Type.Number()),
});

function isRunning(call: CallRecord): boolean {
  return call.recording?.status === 'active' || call.recording?.status === 'starting';
}

/**
 * The engine-side recording lives with the bot: before the bot stops (call ended, handed off with the bot
 * removed), stop it and mark it ended, so that no `active` recording outlives its bot. Best effort.
 */
export async function stopRecordingWithBot(ctx: AppContext, call: CallRecord, log: FastifyBaseLogger): Promise<void> {
  if (!isRunning(call) || call.recording?.egressId !== undefined) return;
  let location = call.recording?.location;
  try {
    location = (await ctx.engine.stopRecording(call.callId)).filePath;
  } catch (err) {
    log.warn({ err, callId: call.callId }, 'stopRecording before stopping the bot failed');
  }
  try {
    await ctx.store.updateCall(call.callId, { recording: { status: 'ended', location, endedAt: new Date().toISOString() } });
  } catch (err) {
    log.warn({ err, callId: call.callId }, 'could not mark the recording ended');
  }
}

/**
 * Recording, two ways. `POST /v1/calls/:id/recording/start|stop`: the engine writes a WAV of both sides
 * itself (works everywhere). `POST /v1/calls/:id/egress`: LiveKit egress, which needs the separate egress
 * service; without it LiveKit answers `unavailable` and this answers 503 `VE_EGRESS_UNAVAILABLE` after
 * `LIVEKIT_EGRESS_TIMEOUT_MS` at most. A call has one recording at a time.
 */
export async function recordingRoutes(app: FastifyInstance, { ctx }: RecordingOptions): Promise<void> {
  const { store, engine, livekit, config } = ctx;
  // Two concurrent starts for one call would both find "nothing running"; this keeps one in flight.
  const busy = new Set<string>();

  async function exclusive<T>(callId: string, access: Access | undefined, op: () => Promise<T>): Promise<T> {
    // 404 for another key's call before anything else, "in progress" included, says it exists.
    await loadCall(store, callId, access);
    if (busy.has(callId)) throw new ApiError('VE_RECORDING_ACTIVE', 'another recording request for this call is in progress');
    busy.add(callId);
    try {
      return await op();
    } finally {
      busy.delete(callId);
    }
  }

  const routeSchema = (summary: string, extra: Record<string, unknown> = {}) => ({
    tags: ['recording'],
    summary,
    params: CallIdParams,
    ...extra,
    response: { 200: RecordingResponse, ...errors(...WRITE_ERRORS, 404, 409, 502, 503) },
  });

  app.post<{ Params: CallIdParams }>(
    '/v1/calls/:id/recording/start',
    { schema: routeSchema('Start the engine-side WAV recording') },
    async (request) =>
      exclusive(request.params.id, request.access, async () => {
        const call = await loadCall(store, request.params.id, request.access);
        assertNotEnded(call);
        if (isRunning(call)) throw new ApiError('VE_RECORDING_ACTIVE');
        const startedAt = new Date().toISOString();
        const filePath = resolve(join(config.recording.dir, `${call.callId}-${startedAt.replace(/[:.]/g, '-')}.wav`));
        try {
          await engine.startRecording(call.callId, filePath);
        } catch (err) {
          // The api role's engine lives in another process: say so rather than "failed".
          if (err instanceof ApiError && err.code === 'VE_ENGINE_REMOTE') throw err;
          throw new ApiError('VE_ENGINE_FAILED', 'the engine could not start recording', { cause: err });
        }
        const updated = await store.updateCall(call.callId, {
          recording: { status: 'active', location: filePath, startedAt, egressId: undefined, endedAt: undefined, error: undefined },
        });
        return { callId: call.callId, recording: updated.recording! };
      }),
  );

  app.post<{ Params: CallIdParams }>(
    '/v1/calls/:id/recording/stop',
    { schema: routeSchema('Stop the engine-side WAV recording') },
    async (request) =>
      exclusive(request.params.id, request.access, async () => {
        const call = await loadCall(store, request.params.id, request.access);
        if (!isRunning(call) || call.recording?.egressId !== undefined || call.state === 'ended' || call.botMode === 'removed') {
          throw new ApiError('VE_RECORDING_NOT_ACTIVE');
        }
        let result;
        try {
          result = await engine.stopRecording(call.callId);
        } catch (err) {
          // The api role's engine lives in another process: say so rather than "failed".
          if (err instanceof ApiError && err.code === 'VE_ENGINE_REMOTE') throw err;
          throw new ApiError('VE_ENGINE_FAILED', 'the engine could not stop recording', { cause: err });
        }
        const updated = await store.updateCall(call.callId, {
          recording: { status: 'ended', location: result.filePath, endedAt: new Date().toISOString() },
        });
        return { callId: call.callId, recording: updated.recording!, durationMs: result.durationMs };
      }),
  );

  app.post<{ Params: CallIdParams; Body: Static<typeof EgressBody> }>(
    '/v1/calls/:id/egress',
    { schema: routeSchema('Start or stop LiveKit egress (needs the LiveKit egress service)', { body: EgressBody }) },
    async (request) =>
      exclusive(request.params.id, request.access, async () => {
        const call = await loadCall(store, request.params.id, request.access);
        if (request.body.action === 'start') {
          assertNotEnded(call);
          if (isRunning(call)) throw new ApiError('VE_RECORDING_ACTIVE');
          const startedAt = new Date().toISOString();
          const location = `${call.callId}-${startedAt.replace(/[:.]/g, '-')}.ogg`;
          try {
            const egressId = await livekit.startEgress(call.roomName, location);
            const updated = await store.updateCall(call.callId, {
              recording: { status: 'active', egressId, location, startedAt, endedAt: undefined, error: undefined },
            });
            return { callId: call.callId, recording: updated.recording! };
          } catch (err) {
            if (err instanceof ApiError && err.code === 'VE_EGRESS_UNAVAILABLE') {
              await store.updateCall(call.callId, { recording: { status: 'unavailable', error: err.message, startedAt } });
            }
            throw err;
          }
        }
        const egressId = call.recording?.egressId;
        if (!isRunning(call) || egressId === undefined) throw new ApiError('VE_EGRESS_NOT_ACTIVE');
        await livekit.stopEgress(egressId);
        const updated = await store.updateCall(call.callId, { recording: { status: 'ended', endedAt: new Date().toISOString() } });
        return { callId: call.callId, recording: updated.recording! };
      }),
  );
}
