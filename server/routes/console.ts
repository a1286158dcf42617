import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { Access } from '../access.ts';
import type { EngineEvent } from '../../engine/events.ts';
import type { EngineLoadReport } from '../../engine/load/engine-load.ts';
import { ownerOf } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { COMMON_ERRORS, WRITE_ERRORS, errors } from '../schemas.ts';
import type { CallerFleet, FleetStats, PlacedCall } from '../console/simulated-callers.ts';

/** What runs where, as `server/main.ts` started it; shown by `GET /v1/engine` and the live page. */
export interface RuntimeInfo {
  livekit: { url: string; local: boolean };
  store: string;
  models: { vad: string; smartTurn: string };
  engine: { vadBackend: string; smartTurnBackend: string; workers: number; turnWorkers: number };
  providers: Record<'stt' | 'llm' | 'tts', { kind: 'real' | 'stand-in'; label: string; url: string }>;
}

export interface ConsoleOptions extends Record<string, unknown> {
  ctx: AppContext;
  /** Absent in tests that build the app without `main.ts`; the page then shows what the engine reports. */
  runtime?: RuntimeInfo;
}

/** Simulated callers one request may add; the engine's own admission limit still applies. */
export const MAX_SIMULATED_PER_REQUEST = 50;
/** Calls listed by `GET /v1/engine`, newest first. */
const MAX_LISTED_CALLS = 200;
const CPU_SAMPLE_MS = 1000;

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'console', 'public');
const STATIC_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'timeline.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

interface LiveCall {
  callId: string;
  startedAt: string;
  botState: string;
  simulated: boolean;
  turns: number;
  lastResponseMs: number | null;
}

const LiveCallSchema = Type.Object({
  callId: Type.String(),
  startedAt: Type.String(),
  botState: Type.String(),
  simulated: Type.Boolean(),
  turns: Type.Integer(),
  lastResponseMs: Type.Union([Type.Number(), Type.Null()]),
});

const Percentiles = Type.Object({
  count: Type.Integer(),
  p50: Type.Union([Type.Number(), Type.Null()]),
  p95: Type.Union([Type.Number(), Type.Null()]),
  p99: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
});

const FleetSchema = Type.Object({
  callers: Type.Integer(),
  failed: Type.Integer(),
  utterances: Type.Integer(),
  botResponses: Type.Integer(),
  unanswered: Type.Integer(),
  responseLatencyMs: Percentiles,
});

const NullableMs = Type.Union([Type.Number(), Type.Null()]);

const LoadSchema = Type.Object(
  {
    load: Type.Number({ description: 'What LiveKit\'s agent dispatch is told, 0..1; 1 while full' }),
    loadPerCall: Type.Number({ description: 'The load one more call adds (measured, at least 1 / ENGINE_MAX_CALLS)' }),
    full: Type.Boolean({ description: 'New calls are refused: one more would push the turn-decision p95 past its target, or the hard cap is reached' }),
    calls: Type.Integer(),
    limit: Type.Union([Type.Literal('smartTurn'), Type.Literal('cpu'), Type.Literal('vadLateness'), Type.Literal('eventLoop'), Type.Literal('maxCalls'), Type.Null()]),
    parts: Type.Object(
      { smartTurn: Type.Number(), cpu: Type.Number(), vadLateness: Type.Number(), eventLoop: Type.Number(), maxCalls: Type.Number() },
      { description: 'Each part in load units with the calls held now (1 = at its limit); the load is the largest' },
    ),
    turnDecisionTargetMs: Type.Number(),
    measured: Type.Object(
      {
        windowMs: Type.Number(),
        meanCalls: Type.Number(),
        smartTurnUtilisation: Type.Number({ description: 'Share of the window the Smart Turn threads were running' }),
        smartTurnUtilisationCeiling: Type.Number({ description: 'The utilisation at which the decision p95 would reach its target' }),
        smartTurnQueueWaitP95Ms: NullableMs,
        turnDecisionP95Ms: NullableMs,
        turnDecisions: Type.Integer(),
        vadLatenessP95Ms: NullableMs,
        eventLoopDelayP99Ms: NullableMs,
        cpuPercent: Type.Number({ description: 'CPU of this process over the window, in % of one core' }),
      },
      { description: 'The measurements of the last window; null where nothing was measured' },
    ),
  },
  { description: 'The measured load (engine/load): what admission uses and LiveKit is told' },
);

/** The load report with NaN (nothing measured) as null, for JSON. */
function loadBody(report: EngineLoadReport): Static<typeof LoadSchema> {
  const m = report.measured;
  return {
    ...report,
    measured: {
      ...m,
      smartTurnQueueWaitP95Ms: finiteOrNull(m.smartTurnQueueWaitP95Ms),
      turnDecisionP95Ms: finiteOrNull(m.turnDecisionP95Ms),
      vadLatenessP95Ms: finiteOrNull(m.vadLatenessP95Ms),
      eventLoopDelayP99Ms: finiteOrNull(m.eventLoopDelayP99Ms),
    },
  };
}

const ProviderSchema = Type.Object({ kind: Type.Union([Type.Literal('real'), Type.Literal('stand-in')]), label: Type.String(), url: Type.String() });

const EngineBody = Type.Object({
  capacity: Type.Object({ activeCalls: Type.Integer(), maxCalls: Type.Integer(), acceptingCalls: Type.Boolean() }),
  load: Type.Union([LoadSchema, Type.Null()]),
  process: Type.Object({
    cpuPercent: Type.Number({ description: 'CPU of this process over the last second, in % of one core' }),
    cpuCores: Type.Integer(),
    rssBytes: Type.Integer(),
    uptimeS: Type.Number(),
  }),
  metrics: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]), { description: 'What the engine reports on /metrics' }),
  runtime: Type.Union([
    Type.Object({
      livekit: Type.Object({ url: Type.String(), local: Type.Boolean() }),
      store: Type.String(),
      models: Type.Object({ vad: Type.String(), smartTurn: Type.String() }),
      engine: Type.Object({ vadBackend: Type.String(), smartTurnBackend: Type.String(), workers: Type.Integer(), turnWorkers: Type.Integer() }),
      providers: Type.Object({ stt: ProviderSchema, llm: ProviderSchema, tts: ProviderSchema }),
    }),
    Type.Null(),
  ]),
  /** True when any provider is an offline stand-in. */
  offlineStandIns: Type.Boolean(),
  calls: Type.Array(LiveCallSchema),
  simulatedCallers: FleetSchema,
});

const AddSimulatedBody = Type.Object(
  { count: Type.Integer({ minimum: 1, maximum: MAX_SIMULATED_PER_REQUEST, description: 'Simulated callers to add' }) },
  { additionalProperties: false },
);

const AddSimulatedResponse = Type.Object({ added: Type.Array(Type.String()), simulatedCallers: FleetSchema });

/** JSON has no NaN: an empty latency window is `null`. */
function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

/**
 * The live page and what it reads: `GET /console/` (static HTML/JS/CSS, no build step; LiveKit's browser
 * SDK is served from node_modules), `GET /v1/engine` (load, what runs where, calls running now) and
 * `POST|DELETE /v1/console/simulated-callers` (server-side rtc-node callers that speak espeak-ng
 * sentences with pauses, for watching density). Per-call timelines come from the existing
 * `GET /v1/calls/:id/events` stream.
 */
export async function consoleRoutes(app: FastifyInstance, { ctx, runtime }: ConsoleOptions): Promise<void> {
  const calls = new Map<string, LiveCall>();
  /** Who created each call running now (`null`: not in the store), read once per call for keys without `admin`. */
  const owners = new Map<string, string | null>();
  let fleetAuthorization: string | undefined;

  const inject = async (method: 'POST', url: string, payload: unknown): Promise<Record<string, unknown>> => {
    const res = await app.inject({ method, url, payload: payload as Record<string, unknown>, headers: { authorization: fleetAuthorization ?? '' } });
    const body = res.json() as Record<string, unknown>;
    if (res.statusCode >= 300) {
      const error = body.error as { code?: string; message?: string } | undefined;
      throw new ApiError(error?.code === 'VE_AT_CAPACITY' ? 'VE_AT_CAPACITY' : 'VE_BOT_START_FAILED', error?.message);
    }
    return body;
  };
  // Loaded on first use: @livekit/rtc-node's native runtime has no business in an app that never simulates.
  let fleet: CallerFleet | undefined;
  const getFleet = async (): Promise<CallerFleet> => {
    const { CallerFleet } = await import('../console/simulated-callers.ts');
    fleet ??= new CallerFleet({
      placeCall: async (): Promise<PlacedCall> => {
        const body = await inject('POST', '/v1/calls', { callerName: 'simulated caller', metadata: { simulated: true } });
        return { callId: String(body.callId), livekitUrl: String(body.livekitUrl), callerToken: String(body.callerToken) };
      },
      endCall: async (callId) => {
        await inject('POST', `/v1/calls/${callId}/end`, {});
      },
      onError: (error) => app.log.warn({ err: error }, 'simulated caller could not be placed'),
    });
    return fleet;
  };

  const unsubscribe = ctx.engine.onEvent((event: EngineEvent) => {
    if (event.type === 'call_ended') {
      calls.delete(event.callId);
      owners.delete(event.callId);
      return;
    }
    let call = calls.get(event.callId);
    if (call === undefined) {
      if (event.type !== 'bot_status') return;
      call = { callId: event.callId, startedAt: event.at, botState: 'listening', simulated: fleet?.has(event.callId) ?? false, turns: 0, lastResponseMs: null };
      calls.set(event.callId, call);
      // Oldest first in a Map: keep the newest MAX_LISTED_CALLS.
      if (calls.size > MAX_LISTED_CALLS) {
        const oldest = calls.keys().next().value as string;
        calls.delete(oldest);
        owners.delete(oldest);
      }
    }
    if (event.type === 'bot_status') call.botState = event.data.state;
    if (event.type === 'turn' && event.data.event === 'user_turn_complete') call.turns++;
    if (event.type === 'latency' && event.data.responseMs !== null) call.lastResponseMs = event.data.responseMs;
  });

  /** The calls running now that this key may see (its own, or all with `admin`), newest first. */
  const visibleCalls = async (access: Access | undefined, log: FastifyBaseLogger): Promise<LiveCall[]> => {
    const newestFirst = [...calls.values()].reverse();
    if (access?.admin === true) return newestFirst;
    const visible: LiveCall[] = [];
    for (const call of newestFirst) {
      let owner = owners.get(call.callId);
      if (owner === undefined) {
        try {
          const record = await ctx.store.getCall(call.callId);
          owner = record === null ? null : (ownerOf(record) ?? null);
          owners.set(call.callId, owner);
        } catch (err) {
          // The store being down hides the call from this answer, not the whole page.
          log.warn({ err, callId: call.callId }, 'could not read the owner of a running call');
          continue;
        }
      }
      if (owner !== null && owner === access?.name) visible.push(call);
    }
    return visible;
  };

  let cpuPercent = 0;
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  const sampler = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    cpuPercent = ((cpu.user + cpu.system) / 1000 / (now - lastAt)) * 100;
    lastCpu = process.cpuUsage();
    lastAt = now;
  }, CPU_SAMPLE_MS);
  sampler.unref();

  app.addHook('onClose', async () => {
    clearInterval(sampler);
    unsubscribe();
    await fleet?.close();
  });

  const EMPTY_FLEET: FleetStats = {
    callers: 0,
    failed: 0,
    utterances: 0,
    botResponses: 0,
    unanswered: 0,
    responseLatencyMs: { count: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN },
  };
  const fleetStats = () => {
    const s = fleet?.stats() ?? EMPTY_FLEET;
    const l = s.responseLatencyMs;
    return { ...s, responseLatencyMs: { count: l.count, p50: finiteOrNull(l.p50), p95: finiteOrNull(l.p95), p99: finiteOrNull(l.p99), max: finiteOrNull(l.max) } };
  };

  const staticCache = new Map<string, string>();
  const readStatic = (name: string): string => {
    let text = staticCache.get(name);
    if (text === undefined) {
      text = readFileSync(join(STATIC_DIR, name), 'utf8');
      staticCache.set(name, text);
    }
    return text;
  };

  app.get('/console', { schema: { hide: true }, config: { public: true } }, async (_request, reply) => reply.redirect('/console/'));

  const sendStatic = (name: string, reply: FastifyReply) => {
    // hasOwn: a name such as `__proto__` must not reach the file system.
    const type = Object.hasOwn(STATIC_FILES, name) ? STATIC_FILES[name] : undefined;
    if (type === undefined) throw new ApiError('VE_NOT_FOUND', `no console file ${name}`);
    return reply.type(type).header('cache-control', 'no-cache').send(readStatic(name));
  };
  app.get('/console/', { schema: { hide: true }, config: { public: true } }, async (_request, reply) => sendStatic('index.html', reply));
  app.get<{ Params: { file: string } }>('/console/:file', { schema: { hide: true }, config: { public: true } }, async (request, reply) =>
    sendStatic(request.params.file, reply),
  );

  let livekitClient: string | undefined;
  app.get('/console/vendor/livekit-client.esm.mjs', { schema: { hide: true }, config: { public: true } }, async (_request, reply) => {
    // The npm package's ES module build is self-contained (no bare imports), so it loads as is.
    livekitClient ??= readFileSync(createRequire(import.meta.url).resolve('livekit-client').replace(/[^/]+$/, 'livekit-client.esm.mjs'), 'utf8');
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'max-age=3600').send(livekitClient);
  });

  app.get(
    '/v1/engine',
    { schema: { tags: ['engine'], summary: 'Engine load, what runs where, and the calls running now (this key\'s own unless it has `admin`)', response: { 200: EngineBody, ...errors(...COMMON_ERRORS) } } },
    async (request) => {
      let metrics: Record<string, number | null> = {};
      try {
        metrics = Object.fromEntries(Object.entries(ctx.engine.metrics()).map(([k, v]) => [k, finiteOrNull(v)]));
      } catch (err) {
        request.log.warn({ err }, 'engine.metrics() failed');
      }
      const load = ctx.engine.load?.();
      return {
        capacity: ctx.engine.capacity(),
        load: load !== undefined ? loadBody(load) : null,
        process: { cpuPercent: Math.round(cpuPercent * 10) / 10, cpuCores: cpus().length, rssBytes: process.memoryUsage.rss(), uptimeS: Math.round(process.uptime()) },
        metrics,
        runtime: runtime ?? null,
        offlineStandIns: runtime !== undefined && Object.values(runtime.providers).some((p) => p.kind === 'stand-in'),
        calls: await visibleCalls(request.access, request.log),
        simulatedCallers: fleetStats(),
      };
    },
  );

  // The fleet is one per process and ends its calls with the key that last added to it: admin only.
  app.post<{ Body: Static<typeof AddSimulatedBody> }>(
    '/v1/console/simulated-callers',
    {
      config: { admin: true },
      schema: {
        tags: ['engine'],
        summary: 'Add simulated callers: server-side LiveKit participants speaking synthesised sentences with pauses',
        body: AddSimulatedBody,
        response: { 201: AddSimulatedResponse, ...errors(...WRITE_ERRORS, 502, 503) },
      },
    },
    async (request, reply) => {
      fleetAuthorization = request.headers.authorization;
      const added = await (await getFleet()).add(request.body.count);
      if (added.length === 0) throw new ApiError('VE_BOT_START_FAILED', 'no simulated caller could be placed (see the server log)');
      for (const callId of added) {
        const call = calls.get(callId);
        if (call) call.simulated = true;
      }
      return reply.status(201).send({ added, simulatedCallers: fleetStats() });
    },
  );

  app.delete(
    '/v1/console/simulated-callers',
    {
      config: { admin: true },
      schema: {
        tags: ['engine'],
        summary: 'Hang up every simulated caller',
        response: { 200: Type.Object({ simulatedCallers: FleetSchema }), ...errors(...WRITE_ERRORS) },
      },
    },
    async () => {
      await fleet?.removeAll();
      return { simulatedCallers: fleetStats() };
    },
  );
}
