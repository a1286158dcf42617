import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { assertNotEnded, loadCall } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { CallIdParams, WRITE_ERRORS, errors } from '../schemas.ts';

export interface SayOptions extends Record<string, unknown> {
  ctx: AppContext;
}

const SayBody = Type.Object(
  {
    text: Type.String({ minLength: 1, maxLength: 2000, description: 'What the bot says, now' }),
    interruptible: Type.Optional(
      Type.Boolean({ default: true, description: "false: the caller's voice does not stop it; their turn is answered after it" }),
    ),
  },
  { additionalProperties: false },
);

const SayResponse = Type.Object({
  callId: Type.String(),
  interruptible: Type.Boolean(),
});

/**
 * `POST /v1/calls/:id/say`: the bot speaks the text now (a dispatcher's announcement), cutting a reply
 * in flight. Answers 202 once the call took the text; the bot's `transcript` event says when it was said.
 */
export async function sayRoutes(app: FastifyInstance, { ctx }: SayOptions): Promise<void> {
  app.post<{ Params: CallIdParams; Body: Static<typeof SayBody> }>(
    '/v1/calls/:id/say',
    {
      schema: {
        tags: ['calls'],
        summary: 'Make the bot say a text now',
        params: CallIdParams,
        body: SayBody,
        response: { 202: SayResponse, ...errors(...WRITE_ERRORS, 404, 409, 413, 415, 501, 502) },
      },
    },
    async (request, reply) => {
      const { text } = request.body;
      const interruptible = request.body.interruptible ?? true;
      const call = await loadCall(ctx.store, request.params.id, request.access);
      assertNotEnded(call);
      if (call.botMode === 'removed') throw new ApiError('VE_CALL_STATE_CONFLICT', `the bot has left call ${call.callId}`);
      try {
        await ctx.engine.say(call.callId, text, { interruptible });
      } catch (err) {
        // The api role's engine lives in another process: say so rather than "failed".
        if (err instanceof ApiError && err.code === 'VE_ENGINE_REMOTE') throw err;
        throw new ApiError('VE_ENGINE_FAILED', 'the engine could not say the text', { cause: err });
      }
      return reply.code(202).send({ callId: call.callId, interruptible });
    },
  );
}
