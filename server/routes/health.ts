import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { errors } from '../schemas.ts';
import { withTimeout } from '../../engine/with-timeout.ts';

export interface HealthOptions extends Record<string, unknown> {
  ctx: AppContext;
}

/** How long /readyz waits for the store before calling it unreachable. */
export const READY_STORE_TIMEOUT_MS = 1000;

const HealthBody = Type.Object({ status: Type.Literal('ok') });
const ReadyBody = Type.Object({
  status: Type.Literal('ready'),
  store: Type.String(),
  outboxBacklog: Type.Integer(),
  activeCalls: Type.Integer(),
  maxCalls: Type.Integer(),
  acceptingCalls: Type.Boolean({ description: 'Whether POST /v1/calls would be admitted now; false is no reason to stop routing' }),
});

/**
 * `/healthz`: the process answers. `/readyz`: it can serve: the store answers (or, while it does not, the
 * outbox is still absorbing writes); once the app is closing, Fastify answers every request, this one
 * included, with 503 before any handler runs (`return503OnClosing`). A full engine is NOT "not ready": a load
 * balancer that stopped routing to a full node would cut `/end`, handoffs and webhooks off from the calls
 * it hosts. Capacity is reported beside it (`acceptingCalls`, also in `GET /v1/engine`), and `POST
 * /v1/calls` answers 503 `VE_AT_CAPACITY` with `Retry-After` on its own.
 */
export async function healthRoutes(app: FastifyInstance, { ctx }: HealthOptions): Promise<void> {
  app.get('/healthz', { schema: { tags: ['health'], security: [], response: { 200: HealthBody } }, config: { public: true } }, async () => ({
    status: 'ok' as const,
  }));

  app.get(
    '/readyz',
    { schema: { tags: ['health'], security: [], response: { 200: ReadyBody, ...errors(503) } }, config: { public: true } },
    async () => {
      const problems: string[] = [];
      let storeState = 'reachable';
      try {
        await withTimeout(ctx.store.ping(), READY_STORE_TIMEOUT_MS, 'store ping');
      } catch (err) {
        storeState = 'unreachable';
        if (!ctx.outbox.healthy()) problems.push(`store unreachable (${(err as Error).message}) and outbox unhealthy`);
      }
      if (problems.length > 0) throw new ApiError('VE_NOT_READY', `not ready: ${problems.join('; ')}`);
      const capacity = ctx.engine.capacity();
      return {
        status: 'ready' as const,
        store: `${ctx.store.kind} ${storeState}`,
        outboxBacklog: ctx.outbox.backlog(),
        activeCalls: capacity.activeCalls,
        maxCalls: capacity.maxCalls,
        acceptingCalls: capacity.acceptingCalls,
      };
    },
  );
}
