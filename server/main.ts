/**
 * `npm start`: the whole engine in one process with embedded defaults. Configuration is read once; what
 * is not configured is started locally: a LiveKit server on loopback (built on first use), the embedded
 * store under DATA_DIR, and offline stand-ins for any provider without a key. The first screenful says
 * what runs where. SIGINT/SIGTERM close everything in order: app, engine, media, stand-ins, outbox,
 * store, local LiveKit.
 */
import { randomBytes } from 'node:crypto';
import { dispose } from '@livekit/rtc-node';
import type { FastifyInstance } from 'fastify';
import type { MediaEngine } from '../engine/media-engine.ts';
import type { VoiceEngine } from '../engine/voice-engine.ts';
import type { CallEngine } from '../engine/call-engine.ts';
import { DispatchEngine } from './dispatch-engine.ts';
import { startEngineWorker } from './engine-role.ts';
import { buildApp } from './app.ts';
import { loadConfig, roleFromArgs, startupNotices, type Config } from './config.ts';
import { createLiveKitClients } from './livekit.ts';
import { ensureLiveKitBinary, freeLoopbackPort, MIN_SECRET_LENGTH, startLocalLiveKit, type LocalLiveKit } from './local-livekit.ts';
import { outboxPort } from './outbox-port.ts';
import { reconcileCalls } from './reconcile-calls.ts';
import type { Providers } from './providers.ts';
import type { RuntimeInfo } from './routes/console.ts';
import { FAULT_EXIT_CODE, installProcessFaultHandlers } from './process-faults.ts';
import type { Outbox } from './store/outbox.ts';
import { closer, openStoreAndOutbox, startVoiceEngine, type Cleanup, type ProgressLog } from './process-parts.ts';
import type { CallStore } from './store/call-store.ts';

export interface RunningServer {
  /** The configuration as used: the local LiveKit's URL and secret, the port actually bound. */
  config: Config;
  app: FastifyInstance;
  /** `http://HOST:PORT` as clients on this machine reach it. */
  baseUrl: string;
  /** The live page; carries the generated dev key in its fragment when there is one. */
  pageUrl: string;
  runtime: RuntimeInfo;
  engine: VoiceEngine;
  media: MediaEngine;
  providers: Providers;
  /** The loopback LiveKit server when `LIVEKIT_URL` was unset. */
  localLiveKit: LocalLiveKit | null;
  /** Closes everything in order. Idempotent. */
  close(): Promise<void>;
}

export type { ProgressLog };

function withOverrides(config: Config, http: Partial<Config['http']>, livekit: Partial<Config['livekit']>): Config {
  return Object.freeze({ ...config, http: Object.freeze({ ...config.http, ...http }), livekit: Object.freeze({ ...config.livekit, ...livekit }) });
}

/** Starts every part; on failure, closes what already started and rethrows. */
export async function startServer(loaded: Config, log: ProgressLog): Promise<RunningServer> {
  const cleanup: Cleanup = [];
  const closeAll = closer(cleanup, log);
  try {
    let config = loaded;
    let localLiveKit: LocalLiveKit | null = null;
    if (config.livekit.embedded) {
      // LiveKit must know the webhook URL before the app listens, so the port is chosen first.
      const port = config.http.port === 0 ? await freeLoopbackPort() : config.http.port;
      // The defaults (devkey/secret) match `livekit-server --dev`; a real server wants a longer secret.
      const apiSecret = config.livekit.apiSecret.length >= MIN_SECRET_LENGTH ? config.livekit.apiSecret : randomBytes(24).toString('hex');
      await ensureLiveKitBinary(log);
      log('starting a local LiveKit server on 127.0.0.1 ...');
      localLiveKit = await startLocalLiveKit({ apiKey: config.livekit.apiKey, apiSecret, webhookUrls: [`http://127.0.0.1:${port}/v1/livekit/webhook`] });
      const started = localLiveKit;
      cleanup.push({ what: 'local LiveKit', close: () => started.stop() });
      config = withOverrides(config, { port }, { url: localLiveKit.url, apiSecret });
    }

    const { store, outbox } = openStoreAndOutbox(config, cleanup);

    let app: FastifyInstance | undefined;
    const { engine, media, providers, models } = await startVoiceEngine(config, log, cleanup, (error) => app?.log.warn({ err: error }, 'engine event listener failed'));
    const { vadPath, smartTurnPath } = models;

    const runtime: RuntimeInfo = {
      livekit: { url: config.livekit.url, local: localLiveKit !== null },
      store: config.store.mongodbUri !== undefined ? `MongoDB (${redactUri(config.store.mongodbUri)})` : `embedded SQLite in ${config.store.dataDir}`,
      models: { vad: vadPath, smartTurn: smartTurnPath },
      engine: { vadBackend: config.engine.vadBackend, smartTurnBackend: config.engine.smartTurnBackend, workers: config.engine.workers, turnWorkers: config.engine.turnWorkers },
      providers: providers.info,
    };
    const plane = await startControlPlane(config, { store, outbox, engine, runtime }, cleanup);
    app = plane.app;
    config = plane.config;
    const { baseUrl, pageUrl } = plane;

    let closing: Promise<void> | undefined;
    return { config, app, baseUrl, pageUrl, runtime, engine, media, providers, localLiveKit, close: () => (closing ??= closeAll()) };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** The HTTP app over an engine (in this process, or dispatching to engine processes), listening. */
async function startControlPlane(
  loaded: Config,
  deps: { store: CallStore; outbox: Outbox; engine: CallEngine; runtime: RuntimeInfo | undefined },
  cleanup: Cleanup,
): Promise<{ app: FastifyInstance; config: Config; baseUrl: string; pageUrl: string }> {
  let config = loaded;
  const { store, outbox, engine, runtime } = deps;
  let app: FastifyInstance | undefined;
  const warnLog = { warn: (obj: unknown, msg?: string) => app?.log.warn(obj, msg) };
  const livekit = createLiveKitClients(config.livekit);
  app = await buildApp({ config, store, outbox: outboxPort(outbox, warnLog), engine, livekit, runtime });
  const listening = app;
  cleanup.push({ what: 'HTTP app', close: () => listening.close() });
  // Calls whose room vanished while this node was down would otherwise stay live for ever.
  await reconcileCalls({ store, livekit }).then(
    ({ checked, ended }) => listening.log.info({ checked, ended: ended.length }, 'start-up reconciliation of live calls done'),
    (error: unknown) => listening.log.warn({ err: error }, 'start-up reconciliation of live calls failed; calls whose room is gone stay live'),
  );
  await app.listen({ host: config.http.host, port: config.http.port });
  const address = app.server.address();
  const port = address !== null && typeof address === 'object' ? address.port : config.http.port;
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  config = withOverrides(config, { port }, {});
  const devKey = config.auth.generatedDevKey;
  const pageUrl = `${baseUrl}/console/${devKey !== undefined ? `#key=${devKey}` : ''}`;
  return { app, config, baseUrl, pageUrl };
}

/** The control plane of `--role api`. */
export interface RunningApi {
  config: Config;
  app: FastifyInstance;
  baseUrl: string;
  pageUrl: string;
  close(): Promise<void>;
}

/**
 * `--role api`: the control plane alone. No media engine: a call's bot is an agent dispatch that an
 * engine process takes (server/dispatch-engine.ts says what crosses processes and what does not yet).
 */
export async function startApiServer(config: Config, log: ProgressLog): Promise<RunningApi> {
  const cleanup: Cleanup = [];
  const closeAll = closer(cleanup, log);
  try {
    const { store, outbox } = openStoreAndOutbox(config, cleanup);
    const engine = new DispatchEngine({
      livekit: config.livekit,
      agentName: config.livekit.agentName,
      maxCalls: config.engine.maxCalls,
      roomOf: async (callId) => (await store.getCall(callId))?.roomName,
    });
    const plane = await startControlPlane(config, { store, outbox, engine, runtime: undefined }, cleanup);
    let closing: Promise<void> | undefined;
    return { ...plane, close: () => (closing ??= closeAll()) };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return 'configured';
  }
}

/** The first screenful: what runs where, and how to get in. */
export function banner(server: RunningServer): string {
  const { config, runtime } = server;
  const p = runtime.providers;
  const provider = (role: string, info: RuntimeInfo['providers']['stt']) =>
    `  ${role.padEnd(5)} ${info.kind === 'stand-in' ? 'OFFLINE STAND-IN' : 'real          '}  ${info.label}  ${info.url}`;
  const lines = [
    '',
    '================ voice-density-engine is running ================',
    `  HTTP API     ${server.baseUrl}   (OpenAPI: ${server.baseUrl}/openapi.json, health: ${server.baseUrl}/readyz)`,
    `  Live page    ${server.pageUrl}`,
    config.auth.generatedDevKey !== undefined
      ? `               (the dev key is in the URL fragment; API calls use: Authorization: Bearer ${config.auth.generatedDevKey})`
      : '               (paste one of your API_KEYS into the page when it asks)',
    `  LiveKit      ${runtime.livekit.url}   ${runtime.livekit.local ? `local server on loopback (log: ${server.localLiveKit?.logPath})` : 'external (LIVEKIT_URL)'}`,
    `  Store        ${runtime.store}`,
    `  Models       Silero VAD ${runtime.models.vad}`,
    `               Smart Turn ${runtime.models.smartTurn}`,
    `  Engine       VAD on ${runtime.engine.vadBackend}, Smart Turn on ${runtime.engine.smartTurnBackend}; ${runtime.engine.workers} media + ${runtime.engine.turnWorkers} turn workers; up to ${config.engine.maxCalls} calls`,
    '  Providers',
    provider('stt', p.stt),
    provider('llm', p.llm),
    provider('tts', p.tts),
  ];
  if (Object.values(p).some((i) => i.kind === 'stand-in')) {
    lines.push(
      '  Offline stand-ins keep the loop audible without keys: the recogniser reports "utterance N (x.x s)",',
      '  the LLM acknowledges it and espeak-ng speaks. Set DEEPGRAM_API_KEY, OPENAI_API_KEY, ELEVENLABS_API_KEY for real ones.',
    );
  }
  lines.push('  Stop with Ctrl-C.', '=================================================================', '');
  return lines.join('\n');
}

/** What main() holds of a started process, whatever its role. */
interface Started {
  log: FastifyInstance['log'];
  /** Said on SIGINT/SIGTERM: what is being closed. */
  closing: string;
  banner: string;
  close(): Promise<void>;
}

async function startRole(config: Config, progress: ProgressLog): Promise<Started> {
  switch (config.role) {
    case 'all': {
      const server = await startServer(config, progress);
      return { log: server.app.log, closing: `app, engine, media, stand-ins, outbox, store${server.localLiveKit ? ', local LiveKit' : ''}`, banner: banner(server), close: () => server.close() };
    }
    case 'api': {
      const api = await startApiServer(config, progress);
      const lines = [
        '',
        '================ voice-density-engine is running: role api ================',
        `  HTTP API     ${api.baseUrl}   (OpenAPI: ${api.baseUrl}/openapi.json, health: ${api.baseUrl}/readyz)`,
        `  LiveKit      ${config.livekit.url}; calls are dispatched to agent "${config.livekit.agentName}" (engine processes: npm start -- --role engine)`,
        `  Store        MongoDB (${redactUri(config.store.mongodbUri ?? '')})`,
        '  Stop with Ctrl-C.',
        '',
      ];
      return { log: api.app.log, closing: 'app, outbox, store', banner: lines.join('\n'), close: () => api.close() };
    }
    case 'engine': {
      const engine = await startEngineWorker(config, progress);
      const lines = [
        '',
        '================ voice-density-engine is running: role engine ================',
        `  Agent        "${config.livekit.agentName}" registered with LiveKit ${config.livekit.url} as worker ${engine.workerId}`,
        `  Store        MongoDB (${redactUri(config.store.mongodbUri ?? '')}); outbox journal in ${config.store.dataDir}`,
        `  Health       ${engine.baseUrl}/healthz, ${engine.baseUrl}/metrics`,
        `  Engine       ${config.engine.workers} media + ${config.engine.turnWorkers} turn workers; up to ${config.engine.maxCalls} calls, admitted by measured load`,
        '  Stop with Ctrl-C.',
        '',
      ];
      return { log: engine.log, closing: 'agent worker, engine, media, stand-ins, outbox, store', banner: lines.join('\n'), close: () => engine.close() };
    }
  }
}

async function main(): Promise<void> {
  const progress: ProgressLog = (line) => process.stdout.write(`[start] ${line}\n`);
  let config: Config;
  try {
    config = loadConfig(undefined, roleFromArgs(process.argv.slice(2)));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  for (const notice of startupNotices(config)) progress(notice);

  let server: Started | undefined;
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    progress(`${signal}: closing ${server?.closing ?? 'what started'} ...`);
    // A second signal, or a close that hangs, must still end the process.
    const force = setTimeout(() => {
      progress('closing took too long; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    await server?.close();
    // rtc-node's native runtime keeps the process alive until it is disposed.
    await dispose().catch(() => {});
    progress('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // An error nobody caught means a state nobody designed: report, close within a bound, exit non-zero
  // for the supervisor to restart us. Only rtc-node's harmless finaliser error and EPIPE are survived.
  installProcessFaultHandlers({
    report: (kind, error, fatal) => {
      const message = fatal ? `${kind}: closing and exiting with status ${FAULT_EXIT_CODE}` : `${kind} (known harmless; the engine keeps running)`;
      if (server !== undefined) server.log[fatal ? 'fatal' : 'warn']({ err: error }, message);
      else process.stderr.write(`${message}: ${(error as Error)?.stack ?? String(error)}\n`);
    },
    close: async () => {
      stopping = true;
      await server?.close();
      await dispose().catch(() => {});
    },
  });

  try {
    server = await startRole(config, progress);
  } catch (error) {
    process.stderr.write(`start-up failed: ${(error as Error).stack ?? String(error)}\n`);
    await dispose().catch(() => {});
    process.exit(1);
  }
  if (stopping) {
    await server.close();
    return;
  }
  process.stdout.write(`${server.banner}\n`);
  server.log.info({ role: config.role }, 'ready');
}

if (import.meta.main) await main();
