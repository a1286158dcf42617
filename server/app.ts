import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import pkg from '../package.json' with { type: 'json' };
import { ApiMetrics } from './api-metrics.ts';
import type { CallEngine } from '../engine/call-engine.ts';
import type { Config } from './config.ts';
import type { AppContext, OutboxPort } from './context.ts';
import { connectEngineEvents } from './engine-events.ts';
import { errorBody, toApiError } from './errors.ts';
import { EventHub } from './event-hub.ts';
import type { LiveKitGateway } from './livekit.ts';
import { authPlugin } from './routes/auth.ts';
import { callsRoutes } from './routes/calls.ts';
import { consoleRoutes, type RuntimeInfo } from './routes/console.ts';
import { errorsPlugin } from './routes/errors.ts';
import { eventsStreamRoutes } from './routes/events-stream.ts';
import { sayRoutes } from './routes/say.ts';
import { handoffRoutes } from './routes/handoff.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsPlugin } from './routes/metrics.ts';
import { openapiPlugin } from './routes/openapi.ts';
import { recordingRoutes } from './routes/recording.ts';
import { tokensRoutes } from './routes/tokens.ts';
import { webhooksRoutes } from './routes/webhooks.ts';
import type { CallStore } from './store/call-store.ts';
import { buildValidator, veKeywords } from './validation.ts';

export interface AppDeps {
  config: Config;
  store: CallStore;
  outbox: OutboxPort;
  engine: CallEngine;
  livekit: LiveKitGateway;
  /** What runs where (LiveKit, store, models, providers), for `/v1/engine` and the live page; set by main.ts. */
  runtime?: RuntimeInfo;
  /** Fastify logger option; defaults to pino at `config.http.logLevel`. */
  logger?: FastifyServerOptions['logger'];
}

/** Largest WebSocket message a client may send; clients only listen, so this is small. */
const WS_MAX_PAYLOAD_BYTES = 4096;

/**
 * Builds the control-plane app without listening, so tests and `main.ts` share it. The caller owns the
 * dependencies: `app.close()` disconnects from the engine and drops live subscribers but does not close
 * the store, outbox or engine.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: deps.logger ?? { level: config.http.logLevel },
    bodyLimit: config.http.bodyLimitBytes,
    // Live SSE streams would otherwise hold close() open forever.
    forceCloseConnections: true,
    return503OnClosing: true,
    ajv: {
      // Reject unknown fields instead of silently dropping them: a typo in a dispatch system's request
      // should fail loudly.
      customOptions: { removeAdditional: false },
      plugins: [veKeywords],
    },
    // Bodies are validated without type coercion; see validation.ts.
    schemaController: { compilersFactory: { buildValidator: buildValidator() } },
    // Errors Fastify raises before routing (malformed URL encoding) also get a catalogued code.
    frameworkErrors: (error, _request, reply) => {
      const apiError = toApiError(error);
      void (reply as FastifyReply).status(apiError.status).send(errorBody(apiError));
    },
  });

  const hub = new EventHub();
  const ctx: AppContext = {
    config,
    store: deps.store,
    outbox: deps.outbox,
    engine: deps.engine,
    livekit: deps.livekit,
    hub,
    metrics: new ApiMetrics(),
  };

  await app.register(errorsPlugin);
  await app.register(openapiPlugin, { version: pkg.version, bodyLimitBytes: config.http.bodyLimitBytes });
  await app.register(metricsPlugin, { ctx });
  await app.register(authPlugin, { config });
  await app.register(websocket, { options: { maxPayload: WS_MAX_PAYLOAD_BYTES } });
  // A refused WebSocket upgrade (401, 404, 429...) is answered on the raw socket, which Node's HTTP server
  // no longer manages: close it, or it lingers and holds app.close() open.
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode >= 400 && request.headers.upgrade !== undefined) request.raw.socket?.destroy();
  });

  await app.register(healthRoutes, { ctx });
  await app.register(callsRoutes, { ctx });
  await app.register(tokensRoutes, { ctx });
  await app.register(handoffRoutes, { ctx });
  await app.register(sayRoutes, { ctx });
  await app.register(recordingRoutes, { ctx });
  await app.register(webhooksRoutes, { ctx });
  await app.register(eventsStreamRoutes, { ctx });
  await app.register(consoleRoutes, { ctx, runtime: deps.runtime });

  const disconnect = connectEngineEvents(deps.engine, deps.outbox, hub, ctx.metrics, app.log);
  app.addHook('onClose', async () => {
    disconnect();
    hub.close();
  });
  return app;
}
