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
});

/**
 * `/healthz`: the process answers. `/readyz`: it can take calls: the store answers (or, while it does
 * not, the outbox is still absorbing writes) and the engine admits calls.
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
      const capacity = ctx.engine.capacity();
      if (!capacity.acceptingCalls) problems.push(`engine not accepting calls (${capacity.activeCalls}/${capacity.maxCalls})`);
      if (problems.length > 0) throw new ApiError('VE_NOT_READY', `not ready: ${problems.join('; ')}`);
      return {
        status: 'ready' as const,
        store: `${ctx.store.kind} ${storeState}`,
        outboxBacklog: ctx.outbox.backlog(),
        activeCalls: capacity.activeCalls,
        maxCalls: capacity.maxCalls,
      };
    },
  );
}
