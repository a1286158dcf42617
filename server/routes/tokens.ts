import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { assertNotEnded, callerIdentityOf, loadCall } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { CallId, ParticipantIdentity, WRITE_ERRORS, errors } from '../schemas.ts';

export interface TokensOptions extends Record<string, unknown> {
  ctx: AppContext;
}

/** Shortest token lifetime a client may ask for. */
export const MIN_TOKEN_TTL_S = 60;

/** The body schema; its `ttlS` maximum is `LIVEKIT_TOKEN_TTL_S`, so the OpenAPI document states the bound. */
function tokenBody(maxTtlS: number) {
  return Type.Object(
    {
      callId: CallId,
      role: Type.Union([Type.Literal('caller'), Type.Literal('dispatcher'), Type.Literal('observer')], {
        description: 'caller: publish microphone, subscribe; dispatcher (a human taking the call): publish, subscribe, data; observer: subscribe only, hidden',
      }),
      identity: Type.Optional(ParticipantIdentity('LiveKit identity; generated when absent (the caller\'s own for `caller`)')),
      name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      ttlS: Type.Optional(
        Type.Integer({ minimum: MIN_TOKEN_TTL_S, maximum: maxTtlS, description: 'Token lifetime; default and maximum LIVEKIT_TOKEN_TTL_S' }),
      ),
    },
    { additionalProperties: false },
  );
}
type TokenBody = Static<ReturnType<typeof tokenBody>>;

export const TokenResponse = Type.Object({
  token: Type.String(),
  identity: Type.String(),
  roomName: Type.String(),
  livekitUrl: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
});

/** `POST /v1/tokens`: least-privilege LiveKit tokens for a live call's room. */
export async function tokensRoutes(app: FastifyInstance, { ctx }: TokensOptions): Promise<void> {
  const maxTtlS = ctx.config.livekit.tokenTtlS;
  app.post<{ Body: TokenBody }>(
    '/v1/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Mint a LiveKit token for a role in a call',
        body: tokenBody(maxTtlS),
        response: { 200: TokenResponse, ...errors(...WRITE_ERRORS, 404, 409, 413, 415) },
      },
    },
    async (request) => {
      const { callId, role, name, ttlS } = request.body;
      const call = await loadCall(ctx.store, callId, request.access);
      assertNotEnded(call);
      // A caller token re-uses the call's caller identity so a reconnect replaces the old session.
      const identity =
        request.body.identity ?? (role === 'caller' ? (callerIdentityOf(call) ?? `caller-${callId}`) : `${role}-${randomUUID()}`);
      const minted = await ctx.livekit.mintToken({ role, roomName: call.roomName, identity, name, ttlS: ttlS ?? maxTtlS });
      return { token: minted.token, identity, roomName: call.roomName, livekitUrl: ctx.livekit.url, expiresAt: minted.expiresAt };
    },
  );
}
