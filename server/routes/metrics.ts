import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { shared } from '../plugin.ts';

export interface MetricsOptions extends Record<string, unknown> {
  ctx: AppContext;
}

/**
 * Counts every HTTP answer (by route template, so ids do not explode the label set) and serves
 * `/metrics` in Prometheus text format: calls, engine frame latency, drops, worker restarts and provider
 * errors (whatever `CallEngine.metrics()` reports), outbox backlog, live subscribers and HTTP requests.
 */
export const metricsPlugin = shared<MetricsOptions>(async function metricsPlugin(app: FastifyInstance, { ctx }: MetricsOptions) {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { schema: { hide: true }, config: { public: true } }, async (request, reply) => {
    const capacity = ctx.engine.capacity();
    const gauges = [
      { name: 've_calls_active', help: 'Calls the engine is running.', value: capacity.activeCalls },
      { name: 've_calls_max', help: 'Calls the engine admits.', value: capacity.maxCalls },
      { name: 've_calls_accepting', help: '1 while the engine admits new calls.', value: capacity.acceptingCalls ? 1 : 0 },
      { name: 've_outbox_backlog', help: 'Engine events not yet written to the store.', value: ctx.outbox.backlog() },
      { name: 've_outbox_healthy', help: '1 while the outbox accepts writes.', value: ctx.outbox.healthy() ? 1 : 0 },
      { name: 've_event_subscribers', help: 'Live SSE and WebSocket subscribers.', value: ctx.hub.subscriberCount },
    ];
    let engineMetrics: Record<string, number> = {};
    try {
      engineMetrics = ctx.engine.metrics();
    } catch (err) {
      // A broken engine metric must not take the whole scrape down.
      request.log.warn({ err }, 'engine.metrics() failed');
    }
    for (const [name, value] of Object.entries(engineMetrics)) {
      gauges.push({ name: `ve_engine_${name}`, help: `Engine metric ${name}.`, value });
    }
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render(gauges));
  });
});
