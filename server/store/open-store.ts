/**
 * Picks the CallStore for a deployment: MongoDB when a URI is configured, otherwise the embedded
 * node:sqlite store under the data directory. Takes already-validated config; reads no environment.
 */
import type { CallStore } from './call-store.ts';
import { EmbeddedCallStore } from './embedded-store.ts';
import { MongoCallStore } from './mongo-store.ts';

export interface CallStoreConfig {
  /** Directory for the embedded database (and, by convention, the outbox journal). */
  dataDir: string;
  /** When set, MongoDB is used and `dataDir` only holds the outbox journal. */
  mongodbUri?: string;
  /** Defaults to the URI's database, else 'voice'. */
  mongodbDbName?: string;
}

/**
 * Never fails because MongoDB is down: the engine must start and take calls during an outage (the
 * outbox buffers events and segments). Index creation starts in the background and is retried by the
 * next operation; `ping()` tells /readyz whether the database answers.
 */
export function openCallStore(config: CallStoreConfig): CallStore {
  if (config.mongodbUri) {
    const store = new MongoCallStore({ uri: config.mongodbUri, dbName: config.mongodbDbName });
    store.ready().catch(() => {
      // Reported through ping() and the outbox's lastError; the next operation retries.
    });
    return store;
  }
  return EmbeddedCallStore.open({ dataDir: config.dataDir });
}
