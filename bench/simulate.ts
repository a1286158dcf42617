/**
 * `npm run simulate -- --callers 50 --seconds 60`: N simulated callers through real LiveKit rooms on
 * loopback, against the engine exactly as `npm start` runs it (a child process, so that its CPU and
 * memory are measured apart from the callers'). Each caller is an rtc-node participant in an
 * API-created call that speaks espeak-ng sentences with pauses and waits for the bot's answer.
 * Prints a progress bar, then a summary table; writes bench/results/simulate.json (or --results PATH).
 * Exits 0 only if every caller was held to the end.
 *
 * Options: --callers N (default 10), --seconds S of steady state after every caller joined (default 60),
 * --workers N media workers (default: the configuration's ENGINE_WORKERS), --backend wasm|native for both models (default: the engine's
 * configured defaults), --real-providers to keep
 * provider keys from the environment (default: offline stand-ins, so a run never bills anyone),
 * --profile-dir DIR to write V8 CPU profiles of the engine's threads there, --ramp-seconds S to stop
 * placing calls after S seconds (default 180; the summary then says how many were held), --caller-nice N
 * (default 10): the simulated callers stand for people on other machines, so on a shared machine they
 * yield the CPU to the engine being measured rather than compete with it; --listen-every N (default 5):
 * one caller in N subscribes to the bot's audio and times its answers by ear, the others follow the
 * bot's `lk.agent.state` attribute (an Opus decoder per caller saved on this machine; the engine's
 * work is the same), --load-admission: let the engine refuse calls by its measured load (default: it
 * admits all N, up to ENGINE_MAX_CALLS, so the run measures past full; the load it reports, read from
 * GET /v1/engine every second, is in the summary either way).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, setPriority, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { dispose } from '@livekit/rtc-node';
import { CallerFleet, type PlacedCall } from '../server/console/simulated-callers.ts';
import { freeLoopbackPort, PROJECT_ROOT } from '../server/local-livekit.ts';

const { values: args } = parseArgs({
  options: {
    callers: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '60' },
    workers: { type: 'string' },
    backend: { type: 'string' },
    'real-providers': { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    'ramp-seconds': { type: 'string', default: '180' },
    'caller-nice': { type: 'string', default: '10' },
    'listen-every': { type: 'string', default: '5' },
    'load-admission': { type: 'boolean', default: false },
    results: { type: 'string', default: join(PROJECT_ROOT, 'bench', 'results', 'simulate.json') },
  },
});
const callers = Number(args.callers);
const seconds = Number(args.seconds);
if (!Number.isInteger(callers) || callers < 1 || !Number.isFinite(seconds) || seconds <= 0 || (args.backend !== undefined && !['wasm', 'native'].includes(args.backend))) {
  process.stderr.write('usage: npm run simulate -- --callers N --seconds S [--workers N] [--backend wasm|native] [--real-providers]\n');
  process.exit(2);
}

const CLOCK_TICKS_PER_S = 100; // Linux USER_HZ

/** utime + stime of a process and its descendants, in seconds; RSS in bytes of the process itself. */
function procCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}

function procRssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Every descendant of `root` (children, grandchildren...). */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const [child, parent] of parentOf) {
      if (parent === pid) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Killed on a crash of this script, so that no engine outlives it. */
let engineChild: ReturnType<typeof spawn> | undefined;
let activeFleet: CallerFleet | undefined;
let engineLogPath = '';

const fmt = (v: number | null | undefined, digits = 0): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');

async function main(): Promise<void> {
  const apiKey = `sim_${randomBytes(18).toString('base64url')}`;
  const port = await freeLoopbackPort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 've-simulate-'));
  const logDir = join(PROJECT_ROOT, '.cache', 'simulate');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `engine-${Date.now()}.log`);
  engineLogPath = logPath;

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  if (!args['real-providers']) for (const k of ['DEEPGRAM_API_KEY', 'OPENAI_API_KEY', 'ELEVENLABS_API_KEY']) delete env[k];
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    API_KEYS: `${apiKey}:simulator`,
    DATA_DIR: dataDir,
    RECORDING_DIR: join(dataDir, 'recordings'),
    // Every other engine setting is the configuration's, read by main.ts through server/engine-options.ts;
    // only the admission limit must fit the callers asked for, and the flags given override theirs.
    ENGINE_MAX_CALLS: String(Math.max(callers, 50)),
    ...(args.workers !== undefined ? { ENGINE_WORKERS: args.workers } : {}),
    ENGINE_LOAD_ADMISSION: String(args['load-admission']),
    ...(args.backend !== undefined ? { VAD_BACKEND: args.backend, SMART_TURN_BACKEND: args.backend } : {}),
    // Each simulated call is created by one request and ended by another; the default 600 a minute is plenty,
    // but the page and the progress polls share the key.
    RATE_LIMIT_MAX: '100000',
    LOG_LEVEL: 'warn',
  });
  delete env.CI;

  process.stdout.write(`starting the engine (node server/main.ts; log: ${logPath}) ...\n`);
  const profile = args['profile-dir'] !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${args['profile-dir']}`] : [];
  const child = spawn(process.execPath, [...profile, 'server/main.ts'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  engineChild = child;
  // Whatever ends this script (but SIGKILL) ends the engine too; a graceful stop has already waited for it.
  process.on('exit', () => child.kill('SIGKILL'));
  let output = '';
  const log = createWriteStream(logPath);
  const onData = (d: Buffer): void => {
    // Only the start-up is searched; after that the log file has it all.
    if (output.length < 100_000) output += d.toString();
    log.write(d);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const deadline = Date.now() + 180_000;
  while (!output.includes('voice-density-engine is running')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the engine did not start (see ${logPath}):\n${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const bannerStart = output.indexOf('================ voice-density-engine');
  process.stdout.write(output.slice(bannerStart, output.indexOf('\n\n', bannerStart + 10) + 1));

  const api = async (path: string, init: { method?: string; json?: unknown } = {}): Promise<Record<string, any>> => {
    const res = await fetch(`${baseUrl}${path}`, {
      // A saturated engine must fail a request, not hold the ramp-up forever.
      signal: AbortSignal.timeout(30_000),
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${apiKey}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
    });
    const body = (await res.json()) as Record<string, any>;
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${body?.error?.code ?? ''} ${body?.error?.message ?? ''}`);
    return body;
  };

  const failures: string[] = [];
  const isTty = process.stdout.isTTY === true;
  const fleet = new CallerFleet({
    placeCall: async (): Promise<PlacedCall> => {
      const body = await api('/v1/calls', { method: 'POST', json: { callerName: 'simulated caller', metadata: { simulated: true } } });
      return { callId: body.callId, livekitUrl: body.livekitUrl, callerToken: body.callerToken };
    },
    endCall: async (callId) => {
      await api(`/v1/calls/${callId}/end`, { method: 'POST', json: {} });
    },
    onError: (error) => {
      failures.push(String((error as Error).message ?? error));
      if (failures.length <= 3) progress(`call failed: ${failures[failures.length - 1]}`, isTty, true);
    },
  });
  activeFleet = fleet;

  // Ctrl-C reaches the engine too (same process group); hang the callers up before leaving.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stdout.write(`\n${signal}: hanging up ...\n`);
      void fleet.close().finally(async () => {
        child.kill('SIGTERM');
        await exited;
        await dispose().catch(() => {});
        process.exit(130);
      });
    });
  }

  // After the spawn, so that the engine (and its LiveKit server) keep the normal priority.
  setPriority(Number(args['caller-nice']));

  const idleRss = procRssBytes(child.pid!);
  const livekitPids = () => descendants(child.pid!).filter((pid) => processName(pid).startsWith('livekit'));

  // Ramp-up: a few calls at a time, each caller's first sentence spread over a few seconds.
  const rampStart = performance.now();
  let rampDone = false;
  const rampTimeout = AbortSignal.timeout(Number(args['ramp-seconds']) * 1000);
  const listenEvery = Math.max(1, Number(args['listen-every']));
  const ramp = fleet.add(callers, { concurrency: 4, spreadMs: 4000, signal: rampTimeout, listenEvery }).then((ids) => {
    rampDone = true;
    return ids;
  });
  while (!rampDone) {
    const s = fleet.stats();
    const line = `ramp-up  ${bar(s.callers / callers)}  ${s.callers}/${callers} callers joined${s.failed ? `, ${s.failed} failed` : ''}`;
    progress(line, isTty);
    await Promise.race([ramp, new Promise((r) => setTimeout(r, 500))]);
  }
  const joined = await ramp;
  if (rampTimeout.aborted) progress(`ramp-up: stopped placing calls after ${args['ramp-seconds']} s`, isTty, true);
  if (failures.length > 0) progress(`ramp-up: ${failures.length} calls failed, first: ${failures[0]}`, isTty, true);
  const rampSeconds = (performance.now() - rampStart) / 1000;
  progress(`ramp-up  ${bar(1)}  ${joined.length}/${callers} callers joined in ${rampSeconds.toFixed(1)} s`, isTty, true);

  // Steady state: CPU over exactly this window; memory sampled.
  const startEngineCpu = procCpuSeconds(child.pid!);
  const startLivekitCpu = livekitPids().reduce((sum, pid) => sum + procCpuSeconds(pid), 0);
  const startSelfCpu = process.cpuUsage();
  const startStats = fleet.stats();
  const startedAt = performance.now();
  let peakRss = procRssBytes(child.pid!);
  let engine: Record<string, any> = await api('/v1/engine');
  let minActive = engine.capacity.activeCalls as number;
  // The load the engine reports (what LiveKit would be told), once a second over the window.
  const loads: Array<{ load: number; full: boolean; limit: string | null }> = [];
  while (performance.now() - startedAt < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    peakRss = Math.max(peakRss, procRssBytes(child.pid!));
    engine = await api('/v1/engine');
    minActive = Math.min(minActive, engine.capacity.activeCalls);
    if (engine.load) loads.push({ load: engine.load.load, full: engine.load.full, limit: engine.load.limit });
    const s = fleet.stats();
    const elapsed = (performance.now() - startedAt) / 1000;
    const m = engine.metrics;
    progress(
      `steady   ${bar(elapsed / seconds)}  ${elapsed.toFixed(0)}/${seconds} s  calls ${engine.capacity.activeCalls}  answered ${s.botResponses}/${s.utterances}  ` +
        `frame p99 ${fmt(m.frame_latency_p99_ms, 1)} ms  engine CPU ${fmt(engine.process.cpuPercent)} %  load ${fmt(engine.load?.load, 2)}`,
      isTty,
    );
  }
  const wallS = (performance.now() - startedAt) / 1000;
  const engineCpuS = procCpuSeconds(child.pid!) - startEngineCpu;
  const livekitCpuS = livekitPids().reduce((sum, pid) => sum + procCpuSeconds(pid), 0) - startLivekitCpu;
  const self = process.cpuUsage(startSelfCpu);
  const selfCpuS = (self.user + self.system) / 1e6;
  const endStats = fleet.stats();
  const rss = procRssBytes(child.pid!);
  progress('', isTty, true);

  process.stdout.write('hanging up ...\n');
  await fleet.close();
  child.kill('SIGTERM');
  const code = await exited;
  log.end();
  rmSync(dataDir, { recursive: true, force: true });

  const m = engine.metrics;
  const held = minActive;
  const loadSummary = summariseLoads(loads);
  const perCall = (v: number) => v / Math.max(1, held);
  const rows: Array<[string, string]> = [
    ['calls requested / callers joined / engine calls (fewest in the window)', `${callers} / ${joined.length} / ${held} (failed ${endStats.failed})`],
    ['steady-state window', `${wallS.toFixed(0)} s after a ${rampSeconds.toFixed(0)} s ramp-up`],
    ['frame latency p50 / p99 (engine)', `${fmt(m.frame_latency_p50_ms, 1)} / ${fmt(m.frame_latency_p99_ms, 1)} ms`],
    ['turn-decision latency p95 (VAD stop -> Smart Turn)', `${fmt(m.turn_decision_latency_p95_ms)} ms`],
    [
      `load reported (mean / max; full; target ${fmt(engine.load?.turnDecisionTargetMs)} ms)`,
      loadSummary === null ? '–' : `${fmt(loadSummary.mean, 2)} / ${fmt(loadSummary.max, 2)}; full ${fmt(loadSummary.fullShare * 100)} % of the window; limit ${loadSummary.limit ?? '–'}`,
    ],
    ['caller utterances / bot responses / unanswered', `${endStats.utterances - startStats.utterances} / ${endStats.botResponses - startStats.botResponses} / ${endStats.unanswered - startStats.unanswered} (in the window)`],
    [`response latency p50 / p95 (heard by the ${listenEvery === 1 ? 'callers' : `1 in ${listenEvery} callers that listen`})`, `${fmt(endStats.responseLatencyMs.p50)} / ${fmt(endStats.responseLatencyMs.p95)} ms`],
    ['dropped input samples / worker restarts', `${fmt(m.input_dropped_samples_total)} / ${fmt(m.worker_restarts_total)}`],
    ['event-loop delay p99 (engine)', `${fmt(m.event_loop_delay_p99_ms, 1)} ms`],
    ['engine CPU (total / per call)', `${fmt((engineCpuS / wallS) * 100)} % / ${fmt(perCall((engineCpuS / wallS) * 100), 1)} % of one core`],
    ['LiveKit server CPU (total / per call)', `${fmt((livekitCpuS / wallS) * 100)} % / ${fmt(perCall((livekitCpuS / wallS) * 100), 1)} % of one core`],
    ['simulated callers CPU (this process)', `${fmt((selfCpuS / wallS) * 100)} % of one core`],
    ['engine memory (RSS idle / end / per call)', `${fmt(idleRss / 2 ** 20)} / ${fmt(rss / 2 ** 20)} MB / ${fmt(perCall((rss - idleRss) / 2 ** 20), 1)} MB`],
    ['machine', `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'}, ${fmt(totalmem() / 2 ** 30)} GiB, node ${process.version}, VAD ${engine.runtime?.engine.vadBackend}, Smart Turn ${engine.runtime?.engine.smartTurnBackend}, ${engine.runtime?.engine.workers} media workers`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\nsummary (${new Date().toISOString()})\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
  if (failures.length > 0) process.stdout.write(`\nfirst failures:\n  ${[...new Set(failures)].slice(0, 5).join('\n  ')}\n`);
  process.stdout.write(`\nengine exited with ${code}; its log: ${logPath}\n`);

  mkdirSync(dirname(args.results), { recursive: true });
  writeFileSync(
    args.results,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model.trim(), memoryGiB: Math.round(totalmem() / 2 ** 30) },
        node: process.version,
        options: { callers, seconds, workers: engine.runtime?.engine.workers, backends: engine.runtime?.engine, realProviders: args['real-providers'] },
        calls: { requested: callers, joined: joined.length, held, failed: endStats.failed },
        engineMetrics: m,
        load: loadSummary === null ? null : { ...loadSummary, admission: args['load-admission'], last: engine.load },
        callers: {
          utterances: endStats.utterances - startStats.utterances,
          botResponses: endStats.botResponses - startStats.botResponses,
          unanswered: endStats.unanswered - startStats.unanswered,
          responseLatencyMs: endStats.responseLatencyMs,
        },
        cpuPercentOfOneCore: { engine: (engineCpuS / wallS) * 100, livekit: (livekitCpuS / wallS) * 100, simulator: (selfCpuS / wallS) * 100 },
        engineRssBytes: { idle: idleRss, end: rss, peak: peakRss },
        windowS: wallS,
      },
      null,
      2,
    )}\n`,
  );
  await dispose();
  process.exit(held === callers && code === 0 ? 0 : 1);
}

/** Mean and largest load over the window, the share of samples that said full, and the most frequent limit. */
function summariseLoads(loads: Array<{ load: number; full: boolean; limit: string | null }>): { mean: number; max: number; fullShare: number; limit: string | null; samples: number } | null {
  if (loads.length === 0) return null;
  const limits = new Map<string, number>();
  for (const { limit } of loads) if (limit !== null) limits.set(limit, (limits.get(limit) ?? 0) + 1);
  const limit = [...limits.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  return {
    mean: loads.reduce((sum, l) => sum + l.load, 0) / loads.length,
    max: Math.max(...loads.map((l) => l.load)),
    fullShare: loads.filter((l) => l.full).length / loads.length,
    limit,
    samples: loads.length,
  };
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

let lastPlainAt = 0;
/** One line rewritten in place on a terminal; a line every 10 s otherwise (CI logs). */
function progress(line: string, isTty: boolean, final = false): void {
  if (isTty) {
    process.stdout.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
  } else if (line !== '' && (final || Date.now() - lastPlainAt >= 10_000)) {
    lastPlainAt = Date.now();
    process.stdout.write(`${line}\n`);
  }
}

// rtc-node's native handle finaliser has been seen throwing "trying to drop an invalid handle" under
// load, outside any call stack of ours; one caller's clean-up must not end the whole run.
let uncaught = 0;
process.on('uncaughtException', (error) => {
  if (++uncaught <= 3) process.stderr.write(`\nuncaught (the run goes on): ${(error as Error)?.message ?? error}\n`);
});

await main().catch(async (error) => {
  process.stderr.write(`simulate failed: ${(error as Error).stack ?? error}\n`);
  if (engineChild?.exitCode !== null) process.stderr.write(`the engine exited with ${engineChild?.exitCode}; `);
  process.stderr.write(`engine log: ${engineLogPath}\n`);
  await activeFleet?.close().catch(() => {});
  engineChild?.kill('SIGTERM');
  await dispose().catch(() => {});
  process.exit(1);
});
