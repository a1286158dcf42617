import type { ApiMetrics } from './api-metrics.ts';
import type { CallEngine } from '../engine/call-engine.ts';
import type { EngineEvent } from '../engine/events.ts';
import type { Config } from './config.ts';
import type { EventHub } from './event-hub.ts';
import type { LiveKitGateway } from './livekit.ts';
import type { CallStore } from './store/call-store.ts';

/**
 * What the control plane needs from the durable outbox: engine events are handed over without waiting
 * for the database, and it reports how much is still queued. `server/outbox-port.ts` adapts the store
 * engineer's `Outbox` to it.
 */
export interface OutboxPort {
  /** Queues the event (and what it implies: transcript segment, latency) for the store; never waits. */
  enqueue(event: EngineEvent): void;
  /** Items not yet written to the store. */
  backlog(): number;
  /** False when the outbox itself can no longer accept writes (disk full, closed). */
  healthy(): boolean;
  /** Resolves when everything queued so far reached the store. */
  flush(): Promise<void>;
}

/** Everything the route plugins share; built once by `buildApp`. */
export interface AppContext {
  config: Config;
  store: CallStore;
  outbox: OutboxPort;
  engine: CallEngine;
  livekit: LiveKitGateway;
  hub: EventHub;
  metrics: ApiMetrics;
}
