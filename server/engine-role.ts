/**
 * `--role engine`: one engine process and nothing else. It registers with LiveKit as an agent worker
 * under `AGENT_NAME`, reports the engine's measured load, hosts each job LiveKit assigns it
 * (server/engine-jobs.ts), and writes every event of its calls to the shared store through its own
 * outbox journal under `DATA_DIR` (one journal per engine process: give each its own directory).
 * It serves `/healthz` and `/metrics` on `HOST:PORT` and no API: calls are created by the control
 * plane (`--role api`) or by anyone's agent dispatch.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { AgentWorker } from '../engine/dispatch/agent-worker.ts';
import type { MediaEngine } from '../engine/media-engine.ts';
import { AGENT_STATE_ATTRIBUTE } from '../engine/transport/livekit-transport.ts';
import type { VoiceEngine } from '../engine/voice-engine.ts';
import type { Config } from './config.ts';
import { JobHost } from './engine-jobs.ts';
import { outboxPort } from './outbox-port.ts';
import { closer, openStoreAndOutbox, startVoiceEngine, type Cleanup, type ProgressLog } from './process-parts.ts';
import type { CallStore } from './store/call-store.ts';

export interface RunningEngineWorker {
  config: Config;
  engine: VoiceEngine;
  media: MediaEngine;
  worker: AgentWorker;
  jobs: JobHost;
  store: CallStore;
  /** `http://HOST:PORT` of /healthz and /metrics. */
  baseUrl: string;
  workerId: string;
  log: FastifyBaseLogger;
  /** Leaves LiveKit, ends the calls, flushes the outbox. Idempotent. */
  close(): Promise<void>;
}

export async function startEngineWorker(config: Config, progress: ProgressLog): Promise<RunningEngineWorker> {
  const cleanup: Cleanup = [];
  const closeAll = closer(cleanup, progress);
  // A Fastify app for its logger and the two health routes; it listens once the worker registered.
  const http: FastifyInstance = Fastify({ logger: { level: config.http.logLevel }, forceCloseConnections: true });
  const log = http.log;
  cleanup.push({ what: 'health server', close: () => http.close() });
  try {
    const { store, outbox } = openStoreAndOutbox(config, cleanup);
    const { engine, media } = await startVoiceEngine(config, progress, cleanup, (error) => log.warn({ err: error }, 'engine event listener failed'));
    const port = outboxPort(outbox, log);
    // Never unsubscribed: the engine closes before the outbox, and the `call_ended` of every call it
    // closes must still reach the journal.
    engine.onEvent((event) => port.enqueue(event));

    let worker: AgentWorker | undefined;
    const jobs = new JobHost({ engine, store, log, endJob: (jobId) => worker?.endJob(jobId) });
    cleanup.push({ what: 'job host', close: async () => jobs.close() });
    worker = new AgentWorker({
      url: config.livekit.url,
      apiKey: config.livekit.apiKey,
      apiSecret: config.livekit.apiSecret,
      agentName: config.livekit.agentName,
      load: engine.loadSource,
      participantName: 'AI agent',
      // As the engine's own token has it: `initializing` until the call answers.
      participantAttributes: { [AGENT_STATE_ATTRIBUTE]: 'initializing' },
      onJob: (job) => jobs.host(job),
      onTerminate: (job) => jobs.terminate(job),
      onListenerError: (error) => log.warn({ err: error }, 'agent worker listener failed'),
    });
    const registered = worker;
    // Leaves LiveKit before the engine closes its calls, so no new job arrives meanwhile.
    cleanup.push({ what: 'agent worker', close: () => registered.close() });
    worker.on('registered', (e) => log.info({ workerId: e.workerId, registrations: e.registrations, jobCount: e.jobCount }, 'registered with LiveKit'));
    worker.on('disconnected', (e) => log.warn({ workerId: e.workerId, code: e.code, reason: e.reason }, 'LiveKit worker session lost; re-registering'));
    worker.on('connect_failed', (e) => log.warn({ err: e.error, retryInMs: e.retryInMs }, 'cannot reach LiveKit; retrying'));
    worker.on('job_status', (e) => log.info({ jobId: e.jobId, callId: e.callId, status: e.status, error: e.error }, 'job status'));
    progress(`registering with LiveKit at ${config.livekit.url} as agent "${config.livekit.agentName}" ...`);
    const { workerId } = await worker.start();

    healthRoutes(http, () => renderMetrics({ ...prefixed('engine_', engine.metrics()), ...registered.metrics(), outbox_backlog: port.backlog() }));
    await http.listen({ host: config.http.host, port: config.http.port });
    const address = http.server.address();
    const boundPort = address !== null && typeof address === 'object' ? address.port : config.http.port;
    const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
    const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;

    let closing: Promise<void> | undefined;
    return { config, engine, media, worker, jobs, store, baseUrl, workerId, log, close: () => (closing ??= closeAll()) };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function prefixed(prefix: string, values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [`${prefix}${name}`, value]));
}

/** Prometheus text, every figure a gauge named `ve_<name>`. */
function renderMetrics(values: Record<string, number>): string {
  return Object.entries(values)
    .map(([name, value]) => `# TYPE ve_${name} gauge\nve_${name} ${Number.isFinite(value) ? value : 'NaN'}\n`)
    .join('');
}

function healthRoutes(http: FastifyInstance, metrics: () => string): void {
  http.get('/healthz', async () => ({ status: 'ok' }));
  http.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics()));
}
