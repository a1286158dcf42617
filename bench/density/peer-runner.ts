/**
 * The peers' architecture at N calls: N `peer-call.ts` processes, one per call. The parent loads them
 * all, starts them together, and measures each process's CPU (utime + stime deltas from /proc/PID/stat)
 * and RSS (/proc/PID/status VmRSS) over the measured phase, from outside the processes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BenchChildError } from './engine-runner.ts';
import { clockTicksPerSecond, machineBusyCpuSeconds, processCpuSeconds, processRssBytes } from './proc-stats.ts';
import { latencySummary, sleep, summarise, toMb, type LatencySummary, type PeerCommand, type PeerMessage, type PeerReport } from './common.ts';

const PEER_CALL = fileURLToPath(new URL('./peer-call.ts', import.meta.url));
/** Loading onnxruntime-node and two models in N processes at once on a small, busy machine is slow. */
const READY_TIMEOUT_MS = 300_000;
const REPORT_TIMEOUT_MS = 60_000;
const RSS_SAMPLE_INTERVAL_MS = 1000;

export interface PeerRunOptions {
  calls: number;
  seconds: number;
  warmupSeconds: number;
  seed: number;
  /** Intra-op threads per onnxruntime-node session in each process. */
  threads: number;
  /** Feeder timer period, as for the engine. */
  tickMs: number;
}

export interface PeerRunResult {
  arch: 'peer';
  backend: 'native';
  calls: number;
  measuredMs: number;
  loadMs: { mean: number; max: number };
  frameLatencyMs: LatencySummary;
  stopToTurnDecisionMs: LatencySummary;
  featureMs: LatencySummary;
  /** The worst process's p99 and the median of the processes' p99s. */
  eventLoopDelayP99Ms: { max: number; median: number };
  /** Peers have no bounded ring, so nothing is dropped; a process that cannot keep up builds a backlog instead. */
  droppedSamples: 0;
  pendingWindowsAtEnd: number;
  feeder: { lateFrames: number; lagP99MaxMs: number };
  cpuPercentTotal: number;
  cpuPercentPerCall: number;
  /** CPU the rest of the machine used meanwhile (other engineers' work, and this parent), in % of one core. */
  otherCpuPercent: number;
  loadAverage: { atStart: number; atEnd: number };
  /** Set by the parent: others used more CPU than allowed during every attempt at this run. */
  contended?: boolean;
  attempts?: number;
  rssMb: { mean: number; max: number };
  rssPerCallMb: number;
  /** One process with its models loaded and warm, before any audio. */
  idleRssPerProcessMb: number;
  smartTurn: { requests: number; failures: number };
  events: PeerReport['events'];
}

interface Peer {
  child: ChildProcess;
  ready: Promise<number>;
  report: Promise<PeerReport>;
}

function startPeer(index: number, options: PeerRunOptions): Peer {
  const child = fork(PEER_CALL, ['--index', String(index), '--seed', String(options.seed), '--threads', String(options.threads), '--tick-ms', String(options.tickMs)], {
    execPath: process.execPath,
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = Promise.withResolvers<number>();
  const report = Promise.withResolvers<PeerReport>();
  // Settling a settled promise is a no-op, so an exit after the report changes nothing.
  const fail = (error: Error) => {
    ready.reject(error);
    report.reject(error);
  };
  // Whichever of the two a caller is not awaiting yet must not become an unhandled rejection.
  ready.promise.catch(() => undefined);
  report.promise.catch(() => undefined);
  child.on('message', (message: PeerMessage) => {
    if (message.type === 'ready') ready.resolve(message.loadMs);
    else if (message.type === 'report') report.resolve(message);
    else if (message.type === 'failed') fail(new BenchChildError(`peer ${index} failed: ${message.message}`));
  });
  child.on('exit', (code, signal) => fail(new BenchChildError(`peer ${index} exited with ${signal ?? code}`)));
  return { child, ready: ready.promise, report: report.promise };
}

function command(peers: Peer[], message: PeerCommand): void {
  for (const peer of peers) if (peer.child.connected) peer.child.send(message);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchChildError(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function cpuSecondsOf(peers: Peer[], ticksPerSecond: number): number[] {
  return peers.map((p) => processCpuSeconds(p.child.pid!, ticksPerSecond));
}

function totalRssBytes(peers: Peer[]): number {
  return peers.reduce((sum, p) => sum + (processRssBytes(p.child.pid!) || 0), 0);
}

export async function runPeers(options: PeerRunOptions, log: (msg: string) => void): Promise<PeerRunResult> {
  const ticksPerSecond = clockTicksPerSecond();
  const peers = Array.from({ length: options.calls }, (_, i) => startPeer(i, options));
  try {
    const loadMs = await withTimeout(Promise.all(peers.map((p) => p.ready)), READY_TIMEOUT_MS, `${options.calls} peer processes becoming ready`);
    await sleep(500);
    const idleRssPerProcessMb = toMb(totalRssBytes(peers)) / options.calls;
    log(`peers N=${options.calls}: all ready (load ${Math.round(summarise(loadMs).max)} ms max), idle RSS ${idleRssPerProcessMb.toFixed(1)} MB per process`);

    command(peers, { type: 'start' });
    await sleep(options.warmupSeconds * 1000);

    const loadAverageAtStart = loadavg()[0];
    const machineBefore = machineBusyCpuSeconds(ticksPerSecond);
    const cpuBefore = cpuSecondsOf(peers, ticksPerSecond);
    const wallBefore = performance.now();
    command(peers, { type: 'measure' });
    const rssSamples: number[] = [totalRssBytes(peers)];
    const rssTimer = setInterval(() => rssSamples.push(totalRssBytes(peers)), RSS_SAMPLE_INTERVAL_MS);
    await sleep(options.seconds * 1000);
    clearInterval(rssTimer);
    rssSamples.push(totalRssBytes(peers));
    const cpuAfter = cpuSecondsOf(peers, ticksPerSecond);
    const machineAfter = machineBusyCpuSeconds(ticksPerSecond);
    const wallMs = performance.now() - wallBefore;
    const loadAverageAtEnd = loadavg()[0];
    command(peers, { type: 'stop' });
    const reports = await withTimeout(Promise.all(peers.map((p) => p.report)), REPORT_TIMEOUT_MS, 'peer reports');

    let cpuSeconds = 0;
    for (let i = 0; i < peers.length; i++) {
      const used = cpuAfter[i] - cpuBefore[i];
      if (!Number.isFinite(used)) throw new BenchChildError(`peer ${i} ended during the measured phase`);
      cpuSeconds += used;
    }
    const cpuPercentTotal = ((cpuSeconds * 1000) / wallMs) * 100;
    const rss = summarise(rssSamples);
    const loopP99s = reports.map((r) => r.eventLoopDelayP99Ms).sort((a, b) => a - b);
    const sum = (pick: (r: PeerReport) => number) => reports.reduce((s, r) => s + pick(r), 0);
    return {
      arch: 'peer',
      backend: 'native',
      calls: options.calls,
      measuredMs: Math.round(wallMs),
      loadMs: summarise(loadMs),
      frameLatencyMs: latencySummary(reports.flatMap((r) => r.frameLatencyMs)),
      stopToTurnDecisionMs: latencySummary(reports.flatMap((r) => r.stopToTurnDecisionMs)),
      featureMs: latencySummary(reports.flatMap((r) => r.featureMs)),
      eventLoopDelayP99Ms: { max: loopP99s[loopP99s.length - 1], median: loopP99s[Math.floor(loopP99s.length / 2)] },
      droppedSamples: 0,
      pendingWindowsAtEnd: sum((r) => r.pendingWindows),
      feeder: { lateFrames: sum((r) => r.feeder.lateFrames), lagP99MaxMs: Math.max(...reports.map((r) => r.feeder.lagMs.p99)) },
      cpuPercentTotal,
      cpuPercentPerCall: cpuPercentTotal / options.calls,
      otherCpuPercent: Math.max(0, ((machineAfter - machineBefore) * 1000 * 100) / wallMs - cpuPercentTotal),
      loadAverage: { atStart: loadAverageAtStart, atEnd: loadAverageAtEnd },
      rssMb: { mean: toMb(rss.mean), max: toMb(rss.max) },
      rssPerCallMb: toMb(rss.mean) / options.calls,
      idleRssPerProcessMb,
      smartTurn: { requests: sum((r) => r.smartTurn.requests), failures: sum((r) => r.smartTurn.failures) },
      events: {
        speechStarts: sum((r) => r.events.speechStarts),
        speechEnds: sum((r) => r.events.speechEnds),
        turnsByModel: sum((r) => r.events.turnsByModel),
        turnsBySilence: sum((r) => r.events.turnsBySilence),
      },
    };
  } finally {
    // Only our own children, by handle; each exits by itself after its report.
    await sleep(300);
    for (const peer of peers) if (peer.child.exitCode === null && peer.child.signalCode === null) peer.child.kill('SIGKILL');
  }
}
