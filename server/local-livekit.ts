/**
 * A LiveKit server on loopback only, for `npm start` without `LIVEKIT_URL` and for the tests: the Go
 * binary that `scripts/install-servers.sh` builds into the gitignored `.cache/bin`.
 *
 * Everything a client is told points at 127.0.0.1: the ICE candidates (node IP, loopback candidate, IP
 * filter) and the STUN server. Left empty, `rtc.stun_servers` makes the server hand clients Google's
 * and Twilio's public STUN servers, and clients (rtc-node, browsers) would send traffic off the
 * machine. We give it a loopback address on which nothing listens instead (see {@link UNREACHABLE_STUN}).
 *
 * The server runs under a small bash supervisor that holds a pipe from us: when this process dies in any
 * way (even SIGKILL, which skips exit hooks), the pipe reaches EOF and the supervisor stops the server.
 * Without it a crashed engine would leave a LiveKit server running.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { VoiceError } from '../engine/errors.ts';
import { startChild } from './supervised-child.ts';

/** Root of the project (this file sits in `server/`). */
export const PROJECT_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where `scripts/install-servers.sh` puts the binary. */
export const LIVEKIT_BINARY: string = join(PROJECT_ROOT, '.cache', 'bin', 'livekit-server');

/** The one configured API key; webhooks must be signed with a configured key. */
export const LOCAL_LIVEKIT_API_KEY = 'devkey';

/*
 * A STUN address on which nothing answers: port 9 (discard) on loopback, which is never served on these
 * machines. ICE gathering against it fails at once (ICMP port unreachable), costing nothing; the host
 * candidates on 127.0.0.1 are all a loopback call needs.
 */
export const UNREACHABLE_STUN = '127.0.0.1:9';

/*
 * LiveKit's agent dispatch sends a job to a node only while one of its available workers reports a
 * load under `agents.target_load` (default 0.7; pkg/service/agentservice.go JobRequestAffinity), and
 * prefers the node with the most headroom under it. Our engines report their load scaled so that 1 is
 * "one more call would miss the turn-decision target" and report `full` themselves before that
 * (engine/load), so the server must not stop at 70 % of it. A LiveKit whose configuration we do not
 * write (LIVEKIT_URL, LiveKit Cloud) keeps 0.7: its nodes then stop dispatching to our engines at 70 %
 * of their capacity, which wastes headroom but never overloads them.
 */
export const AGENT_TARGET_LOAD = 1;

/** LiveKit refuses (or warns about) shorter secrets. */
export const MIN_SECRET_LENGTH = 32;

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 20_000;

export class LocalLiveKitError extends VoiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VE_LOCAL_LIVEKIT_FAILED', message, { status: 500, cause: options.cause });
    this.name = 'LocalLiveKitError';
  }
}

export interface LocalLiveKitOptions {
  /** Default {@link LIVEKIT_BINARY}. */
  binaryPath?: string;
  /** A fresh sub-folder per server holds its config and log. Default `.cache/livekit`. */
  workDir?: string;
  /** Default {@link LOCAL_LIVEKIT_API_KEY}. */
  apiKey?: string;
  /** At least {@link MIN_SECRET_LENGTH} characters; default a random one. */
  apiSecret?: string;
  /** Webhook receivers; events are signed with the key. */
  webhookUrls?: string[];
  /** `host:port` of a Redis shared by several LiveKit nodes (a single node needs none). */
  redisAddress?: string;
  /** LiveKit's own log level. Default `warn`. */
  logLevel?: string;
}

export interface LocalLiveKit {
  /** Signalling URL for clients: `ws://127.0.0.1:PORT`. */
  url: string;
  /** The same port over HTTP, for the Twirp APIs (`RoomServiceClient` etc.). */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  /** Where the server's log goes (kept after stop for post-mortems). */
  logPath: string;
  /** Process id of the supervisor (the server is its child). */
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after `graceMs`). Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** The loopback-only server configuration. YAML is a superset of JSON, so it is written as JSON. */
export function localLiveKitConfig(port: number, apiKey: string, apiSecret: string, opts: Pick<LocalLiveKitOptions, 'webhookUrls' | 'redisAddress' | 'logLevel'> = {}): Record<string, unknown> {
  const config: Record<string, unknown> = {
    port,
    bind_addresses: ['127.0.0.1'],
    rtc: {
      node_ip: '127.0.0.1',
      use_external_ip: false,
      enable_loopback_candidate: true,
      // 0 disables ICE over TCP: UDP on loopback always works, and a fixed TCP port would clash between
      // parallel servers (the TCP mux also binds every interface, not just loopback).
      tcp_port: 0,
      ips: { includes: ['127.0.0.1/32'] },
      stun_servers: [UNREACHABLE_STUN],
    },
    keys: { [apiKey]: apiSecret },
    agents: { target_load: AGENT_TARGET_LOAD },
    logging: { level: opts.logLevel ?? 'warn', pion_level: 'error', json: false },
  };
  if (opts.webhookUrls !== undefined && opts.webhookUrls.length > 0) config.webhook = { api_key: apiKey, urls: opts.webhookUrls };
  if (opts.redisAddress !== undefined) config.redis = { address: opts.redisAddress };
  return config;
}

/**
 * Builds the binary through `scripts/install-servers.sh` when it is missing, passing each line of the
 * script's output to `log` (the first build takes minutes: the user must see that something happens).
 */
export async function ensureLiveKitBinary(log: (line: string) => void, binaryPath = LIVEKIT_BINARY): Promise<string> {
  if (existsSync(binaryPath)) return binaryPath;
  log(`LiveKit server not found at ${binaryPath}: building it once with scripts/install-servers.sh (needs Go; takes a few minutes)`);
  const child = spawn('bash', [join(PROJECT_ROOT, 'scripts', 'install-servers.sh')], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => log(`  ${line}`));
  const code = await new Promise<number | null>((done) => {
    child.once('error', () => done(-1));
    child.once('exit', (c) => done(c));
  });
  if (code !== 0 || !existsSync(binaryPath)) {
    throw new LocalLiveKitError(`building the LiveKit server failed (scripts/install-servers.sh exited with ${code}); set LIVEKIT_URL to use another server`);
  }
  log('LiveKit server built');
  return binaryPath;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken meanwhile). */
export async function freeLoopbackPort(): Promise<number> {
  return await new Promise<number>((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') {
        probe.close();
        reject(new LocalLiveKitError('could not read the probe socket address'));
        return;
      }
      probe.close(() => resolvePort(address.port));
    });
  });
}

/**
 * Starts the server on a free loopback port and resolves once its HTTP endpoint answers. Media uses
 * OS-assigned UDP ports per peer connection, so parallel servers on one machine cannot clash on them.
 */
export async function startLocalLiveKit(opts: LocalLiveKitOptions = {}): Promise<LocalLiveKit> {
  const binaryPath = opts.binaryPath ?? LIVEKIT_BINARY;
  const apiSecret = opts.apiSecret ?? randomBytes(24).toString('hex');
  if (apiSecret.length < MIN_SECRET_LENGTH) throw new LocalLiveKitError(`the LiveKit API secret must have at least ${MIN_SECRET_LENGTH} characters`);
  if (!existsSync(binaryPath)) throw new LocalLiveKitError(`${binaryPath} is missing; build it with: bash scripts/install-servers.sh`);
  let lastError: unknown;
  // The free port may be taken between probing and binding by another server on the machine: retry.
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(binaryPath, opts.apiKey ?? LOCAL_LIVEKIT_API_KEY, apiSecret, opts);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnce(binaryPath: string, apiKey: string, apiSecret: string, opts: LocalLiveKitOptions): Promise<LocalLiveKit> {
  const port = await freeLoopbackPort();
  const baseDir = opts.workDir ?? join(PROJECT_ROOT, '.cache', 'livekit');
  mkdirSync(baseDir, { recursive: true });
  const workDir = mkdtempSync(join(baseDir, `${port}-`));
  const configPath = join(workDir, 'config.yaml');
  const logPath = join(workDir, 'server.log');
  writeFileSync(configPath, JSON.stringify(localLiveKitConfig(port, apiKey, apiSecret, opts), null, 2), { mode: 0o600 });

  const child = startChild(binaryPath, ['--config', configPath], logPath);
  const httpUrl = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.hasExited()) {
        const exit = await child.exited;
        throw new LocalLiveKitError(`livekit-server exited during start-up (${exit.code ?? exit.signal}); log ${logPath}:\n${child.logTail()}`);
      }
      if (await answersOk(httpUrl)) break;
      if (Date.now() > deadline) throw new LocalLiveKitError(`livekit-server did not answer within ${READY_TIMEOUT_MS} ms; log ${logPath}:\n${child.logTail()}`);
      await sleep(100);
    }
    // The server answers HTTP 100 ms before it marks itself running, and ignores SIGTERM until then
    // (server.go Start/Stop); stopping it at once would wait for the SIGKILL fallback.
    await sleep(150);
  } catch (error) {
    await child.stop(1000);
    rmSync(configPath, { force: true });
    throw error;
  }

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 3000): Promise<void> => {
    // SIGTERM makes LiveKit drain its rooms; nobody here has a use for a long drain.
    stopping ??= child.stop(graceMs).then(() => rmSync(configPath, { force: true }));
    return stopping;
  };
  return { url: `ws://127.0.0.1:${port}`, httpUrl, apiKey, apiSecret, logPath, pid: child.pid, stop };
}

/*
 * node:http without an agent rather than fetch: fetch's pool keeps the connection alive, and a LiveKit
 * server with an open client connection takes seconds to shut down.
 */
async function answersOk(httpUrl: string): Promise<boolean> {
  return await new Promise<boolean>((done) => {
    const req = httpGet(httpUrl, { agent: false, timeout: 1000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => done(false));
  });
}
