/**
 * A real LiveKit server (the Go binary built by `scripts/install-servers.sh`) on loopback only, for
 * tests. The loopback-only configuration and the supervised process live in `server/local-livekit.ts`,
 * which `npm start` uses too; this adds the test conventions (logs under `.cache/livekit`, pruned daily).
 *
 * Clients in the same process: every process that used `@livekit/rtc-node` must call its `dispose()`
 * once at the end (after `room.disconnect()`). The Rust FFI runtime keeps native handles alive:
 * measured here, a script that connected and disconnected a Room never exits without `dispose()`,
 * and exits about 3 s after it with it. Call it in `afterAll` of each test file that connects rooms;
 * that is safe because vitest runs each test file in its own fork (`pool: 'forks'`), and nothing
 * in that fork may use rtc-node after it. rtc-node also logs at debug level to stdout unless
 * NODE_ENV=production (the "lk-rtc" JSON lines in test output).
 */
import { existsSync } from 'node:fs';
import { LOCAL_LIVEKIT_API_KEY, startLocalLiveKit } from '../../server/local-livekit.ts';
import { cachedBinary, logDir } from './process.ts';

export interface LiveKitServerOptions {
  /** Webhook receivers; events are signed with `apiKey`/`apiSecret`. */
  webhookUrls?: string[];
  /** `host:port` of a Redis shared by several LiveKit nodes (single node needs none). */
  redisAddress?: string;
}

export interface LiveKitServerHandle {
  /** Signalling URL for clients: `ws://127.0.0.1:PORT`. */
  url: string;
  /** The same port over HTTP, for the Twirp APIs (`RoomServiceClient` etc.). */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  /** Where the server's log goes (kept after stop for post-mortems). */
  logPath: string;
  /** Idempotent. */
  stop(): Promise<void>;
}

/** The one configured API key; webhooks must be signed with a configured key. */
export const LIVEKIT_API_KEY = LOCAL_LIVEKIT_API_KEY;

/** Starts a LiveKit server bound to 127.0.0.1 on a random free port; resolves once it answers. */
export async function startLiveKitServer(opts: LiveKitServerOptions = {}): Promise<LiveKitServerHandle> {
  const binary = cachedBinary('livekit-server');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing; build it with: bash scripts/install-servers.sh`);
  }
  const server = await startLocalLiveKit({ binaryPath: binary, workDir: logDir('livekit'), webhookUrls: opts.webhookUrls, redisAddress: opts.redisAddress });
  return { url: server.url, httpUrl: server.httpUrl, apiKey: server.apiKey, apiSecret: server.apiSecret, logPath: server.logPath, stop: () => server.stop() };
}
