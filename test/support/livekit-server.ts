/**
 * A real LiveKit server (the Go binary built by `scripts/install-servers.sh`) on loopback only.
 *
 * Everything a client is told points at 127.0.0.1: the ICE candidates (node IP, loopback candidate,
 * IP filter) and the STUN server. Left empty, `rtc.stun_servers` makes the server hand clients
 * Google's and Twilio's public STUN servers, and @livekit/rtc-node would send traffic off the machine.
 * We give it a loopback address on which nothing listens instead (see {@link UNREACHABLE_STUN}).
 *
 * Clients in the same process: every process that used `@livekit/rtc-node` must call its `dispose()`
 * once at the end (after `room.disconnect()`). The Rust FFI runtime keeps native handles alive:
 * measured here, a script that connected and disconnected a Room never exits without `dispose()`,
 * and exits about 3 s after it with it. Call it in `afterAll` of each test file that connects rooms;
 * that is safe because vitest runs each test file in its own fork (`pool: 'forks'`), and nothing
 * in that fork may use rtc-node after it. rtc-node also logs at debug level to stdout unless
 * NODE_ENV=production (the "lk-rtc" JSON lines in test output).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cachedBinary, logDir, freePort, startChild, waitForReady, type ManagedChild } from './process.ts';

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
export const LIVEKIT_API_KEY = 'devkey';

/*
 * A STUN address on which nothing answers: port 9 (discard) on loopback, which is never served on
 * these machines. ICE gathering against it fails at once (ICMP port unreachable), costing nothing;
 * the host candidates on 127.0.0.1 are all a loopback call needs.
 */
const UNREACHABLE_STUN = '127.0.0.1:9';

const START_ATTEMPTS = 3;

/**
 * Starts a LiveKit server bound to 127.0.0.1 on a random free port and resolves once its HTTP
 * endpoint answers. Media uses OS-assigned UDP ports per peer connection (no port range is
 * configured), so parallel servers on one machine cannot clash on media ports.
 */
export async function startLiveKitServer(opts: LiveKitServerOptions = {}): Promise<LiveKitServerHandle> {
  const binary = cachedBinary('livekit-server');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing; build it with: bash scripts/install-servers.sh`);
  }
  let lastError: unknown;
  // The free port may be taken between probing and binding by another engineer's server: retry.
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(binary, opts);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnce(binary: string, opts: LiveKitServerOptions): Promise<LiveKitServerHandle> {
  const port = await freePort();
  const apiSecret = randomBytes(24).toString('hex'); // 48 chars; the server wants >= 32
  const workDir = mkdtempSync(join(logDir('livekit'), `${port}-`));
  const configPath = join(workDir, 'config.yaml');
  const logPath = join(workDir, 'server.log');

  const config: Record<string, unknown> = {
    port,
    bind_addresses: ['127.0.0.1'],
    rtc: {
      node_ip: '127.0.0.1',
      use_external_ip: false,
      enable_loopback_candidate: true,
      // 0 disables ICE over TCP: UDP on loopback always works, and a fixed TCP port would clash
      // between parallel servers (the TCP mux also binds every interface, not just loopback).
      tcp_port: 0,
      ips: { includes: ['127.0.0.1/32'] },
      stun_servers: [UNREACHABLE_STUN],
    },
    keys: { [LIVEKIT_API_KEY]: apiSecret },
    logging: { level: 'warn', pion_level: 'error', json: false },
  };
  if (opts.webhookUrls !== undefined && opts.webhookUrls.length > 0) {
    config.webhook = { api_key: LIVEKIT_API_KEY, urls: opts.webhookUrls };
  }
  if (opts.redisAddress !== undefined) {
    config.redis = { address: opts.redisAddress };
  }
  // YAML is a superset of JSON, so the config needs no YAML writer.
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  const child: ManagedChild = startChild(binary, ['--config', configPath], logPath);
  const httpUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForReady(child, `livekit-server on port ${port}`, () => answersOk(httpUrl));
    // The server answers HTTP 100 ms before it marks itself running, and ignores SIGTERM until then
    // (server.go Start/Stop); a test that stops it at once would wait for the SIGKILL fallback.
    await sleep(150);
  } catch (err) {
    await child.stop(1000);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // SIGTERM makes LiveKit drain its rooms; a test has no use for a long drain.
      await child.stop(3000);
      rmSync(configPath, { force: true });
    })();
    return stopping;
  };
  return { url: `ws://127.0.0.1:${port}`, httpUrl, apiKey: LIVEKIT_API_KEY, apiSecret, logPath, stop };
}

/*
 * node:http without an agent rather than fetch: fetch's pool keeps the connection alive, and a
 * LiveKit server with an open client connection takes seconds to shut down.
 */
async function answersOk(httpUrl: string): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const req = httpGet(httpUrl, { agent: false, timeout: 1000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}
