import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { VoiceError } from '../../engine/errors.ts';
import { assertNotEnded, loadCall } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { stopRecordingWithBot } from './recording.ts';
import { ApiError } from '../errors.ts';
import { BotModeView, CallIdParams, ParticipantIdentity, WRITE_ERRORS, errors } from '../schemas.ts';

export interface HandoffOptions extends Record<string, unknown> {
  ctx: AppContext;
}

const HandoffBody = Type.Object(
  {
    botMode: Type.Union([Type.Literal('remove'), Type.Literal('transcriber')], {
      description: 'remove: the bot leaves; transcriber: it stays silent and keeps transcribing',
    }),
    agentIdentity: Type.Optional(ParticipantIdentity('LiveKit identity of the human dispatcher; generated when absent')),
    agentName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);

const HandoffResponse = Type.Object({
  callId: Type.String(),
  roomName: Type.String(),
  livekitUrl: Type.String(),
  agentIdentity: Type.String(),
  agentToken: Type.String(),
  agentTokenExpiresAt: Type.String({ format: 'date-time' }),
  botMode: BotModeView,
});

/**
 * `POST /v1/calls/:id/handoff`: a human dispatcher takes over. Mints their token (role `dispatcher`), then
 * removes the bot or turns it into a silent transcriber, and moves the call to `human`. Repeating it mints
 * another token.
 */
export async function handoffRoutes(app: FastifyInstance, { ctx }: HandoffOptions): Promise<void> {
  app.post<{ Params: CallIdParams; Body: Static<typeof HandoffBody> }>(
    '/v1/calls/:id/handoff',
    {
      schema: {
        tags: ['calls'],
        summary: 'Hand the call to a human dispatcher',
        params: CallIdParams,
        body: HandoffBody,
        response: { 200: HandoffResponse, ...errors(...WRITE_ERRORS, 404, 409, 413, 415, 502) },
      },
    },
    async (request) => {
      const { botMode, agentName } = request.body;
      const call = await loadCall(ctx.store, request.params.id, request.access);
      assertNotEnded(call);
      const agentIdentity = request.body.agentIdentity ?? `dispatcher-${randomUUID()}`;
      const minted = await ctx.livekit.mintToken({
        role: 'dispatcher',
        roomName: call.roomName,
        identity: agentIdentity,
        name: agentName,
        ttlS: ctx.config.livekit.tokenTtlS,
      });
      try {
        if (botMode === 'remove') {
          if (call.botMode !== 'removed') {
            await stopRecordingWithBot(ctx, call, request.log);
            await ctx.engine.stopBot(call.callId);
          }
        } else {
          await ctx.engine.setBotMode(call.callId, 'transcriber');
        }
      } catch (err) {
        // The api role's engine lives in another process: say so rather than "failed".
        if (err instanceof ApiError && err.code === 'VE_ENGINE_REMOTE') throw err;
        throw new ApiError('VE_ENGINE_FAILED', `the engine could not switch the bot to ${botMode}`, { cause: err });
      }
      let updated;
      try {
        updated = await ctx.store.updateCall(
          call.callId,
          { state: 'human', botMode: botMode === 'remove' ? 'removed' : 'transcriber' },
          { ifState: ['created', 'active', 'human'] },
        );
      } catch (err) {
        if (err instanceof VoiceError && err.code === 'VE_CALL_STATE_CONFLICT') throw new ApiError('VE_CALL_ENDED', undefined, { cause: err });
        throw err;
      }
      return {
        callId: call.callId,
        roomName: call.roomName,
        livekitUrl: ctx.livekit.url,
        agentIdentity,
        agentToken: minted.token,
        agentTokenExpiresAt: minted.expiresAt,
        botMode: updated.botMode,
      };
    },
  );
}
