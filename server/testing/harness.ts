import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.ts';
import { loadConfig, type Config } from '../config.ts';
import { createLiveKitClients, type LiveKitGateway } from '../livekit.ts';
import { outboxPort } from '../outbox-port.ts';
import type { CallStore } from '../store/call-store.ts';
import { EmbeddedCallStore } from '../store/embedded-store.ts';
import { Outbox } from '../store/outbox.ts';
import { FakeEngine } from './fake-engine.ts';

/** API keys every harness accepts: `Authorization: Bearer ${TEST_API_KEY}`, the default scope (`calls`). */
export const TEST_API_KEY = 'test-key-0123456789abcdef';
export const TEST_API_KEY_NAME = 'tester';
/** Another dispatch system (scope `calls`): must not see the tester's calls, nor they its. */
export const OTHER_API_KEY = 'other-key-0123456789abcdef';
export const OTHER_API_KEY_NAME = 'other';
/** Scope `read`: GETs its own calls, every other method 403. */
export const READ_API_KEY = 'read-key-0123456789abcdef';
export const READ_API_KEY_NAME = 'reader';
/** Scope `admin`: every call, and the console's simulated callers. */
export const ADMIN_API_KEY = 'admin-key-0123456789abcdef';
export const ADMIN_API_KEY_NAME = 'operator';
/** Scopes `read+admin`: reads every call, changes nothing. */
export const MONITOR_API_KEY = 'monitor-key-0123456789abcdef';
export const MONITOR_API_KEY_NAME = 'monitor';
/** A second key with a tiny rate limit, for rate-limit tests. */
export const LIMITED_API_KEY = 'limited-key-0123456789abcdef';
export const LIMITED_API_KEY_NAME = 'limited';
export const LIMITED_MAX = 5;

export interface HarnessOptions {
  livekit: { url: string; apiKey: string; apiSecret: string };
  engine?: FakeEngine;
  /** Listen on this port (0: any free one). Webhook tests pick it before starting LiveKit. */
  port?: number;
  /** Extra settings, as environment variables. */
  env?: Record<string, string>;
  /** Replace the store the app and the outbox use (e.g. one that fails, see `StoreFaults`). */
  wrapStore?: (store: CallStore) => CallStore;
}

export interface Harness {
  app: FastifyInstance;
  baseUrl: string;
  config: Config;
  store: CallStore;
  outbox: Outbox;
  engine: FakeEngine;
  livekit: LiveKitGateway;
  /** fetch() against the app with `key` (default: the test API key) unless `init.headers` has an authorization. */
  api(path: string, init?: RequestInit & { json?: unknown; key?: string }): Promise<Response>;
  close(): Promise<void>;
}

/**
 * The control plane as tests use it: real embedded store and outbox in a temporary directory, the real
 * LiveKit clients pointed at a real (loopback) LiveKit server, a `FakeEngine`, listening on 127.0.0.1.
 */
export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 've-api-'));
  const config = loadConfig({
    CI: '1',
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: String(options.port ?? 0),
    API_KEYS: [
      `${TEST_API_KEY}:${TEST_API_KEY_NAME}`,
      `${LIMITED_API_KEY}:${LIMITED_API_KEY_NAME}`,
      `${OTHER_API_KEY}:${OTHER_API_KEY_NAME}:calls`,
      `${READ_API_KEY}:${READ_API_KEY_NAME}:read`,
      `${ADMIN_API_KEY}:${ADMIN_API_KEY_NAME}:admin`,
      `${MONITOR_API_KEY}:${MONITOR_API_KEY_NAME}:read+admin`,
    ].join(','),
    RATE_LIMIT_MAX: '100000',
    RATE_LIMIT_OVERRIDES: `${LIMITED_API_KEY_NAME}=${LIMITED_MAX}`,
    LIVEKIT_URL: options.livekit.url,
    LIVEKIT_API_KEY: options.livekit.apiKey,
    LIVEKIT_API_SECRET: options.livekit.apiSecret,
    DATA_DIR: dataDir,
    RECORDING_DIR: join(dataDir, 'recordings'),
    ...options.env,
  });
  const embedded = EmbeddedCallStore.open({ dataDir });
  const store = options.wrapStore ? options.wrapStore(embedded) : embedded;
  // The outbox writes through the wrapper too: a store outage holds its writes back as it would for real.
  const outbox = Outbox.open({ dataDir, store, flushDelayMs: 5, maxBackoffMs: 200 });
  const engine = options.engine ?? new FakeEngine();
  const livekit = createLiveKitClients(config.livekit);
  const app = await buildApp({ config, store, outbox: outboxPort(outbox, console), engine, livekit, logger: false });
  await app.listen({ host: config.http.host, port: config.http.port });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('app is not listening on TCP');
  const baseUrl = `http://127.0.0.1:${address.port}`;

  return {
    app,
    baseUrl,
    config,
    store: embedded,
    outbox,
    engine,
    livekit,
    async api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${init.key ?? TEST_API_KEY}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(`${baseUrl}${path}`, { ...init, headers, body });
    },
    async close() {
      await app.close();
      await engine.close();
      await outbox.close();
      await embedded.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
