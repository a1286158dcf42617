import type { FastifyBaseLogger } from 'fastify';
import type { ApiMetrics } from './api-metrics.ts';
import type { CallEngine } from '../engine/call-engine.ts';
import type { OutboxPort } from './context.ts';
import type { EventHub } from './event-hub.ts';

/**
 * Engine events flow two ways: into the durable outbox (then the store), and to live SSE/WebSocket
 * subscribers. Runs on the engine's emit path, so nothing here may throw back into the engine.
 * Returns the function that disconnects the flow.
 */
export function connectEngineEvents(
  engine: CallEngine,
  outbox: OutboxPort,
  hub: EventHub,
  metrics: ApiMetrics,
  log: Pick<FastifyBaseLogger, 'warn'>,
): () => void {
  return engine.onEvent((event) => {
    try {
      metrics.engineEvents.inc({ type: event.type });
      outbox.enqueue(event);
      hub.publish(event);
    } catch (err) {
      log.warn({ err, callId: event.callId }, 'engine event dropped');
    }
  });
}
