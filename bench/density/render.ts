/**
 * Prints the tables of a saved density results file again (with the current report code), e.g. to
 * compare a run made earlier or on another machine.
 *
 * Run: npm exec -- node bench/density/render.ts [bench/results/density.json]
 */
import { readFileSync } from 'node:fs';
import { printReport, withMarginalRss, type EngineRunWithBase, type FailedRun } from './report.ts';
import type { EngineRunResult } from './common.ts';
import type { PeerRunResult } from './peer-runner.ts';

const path = process.argv[2] ?? new URL('../results/density.json', import.meta.url).pathname;
const saved = JSON.parse(readFileSync(path, 'utf8')) as {
  date: string;
  machine: { cpuModel: string; cpus: number; loadAverageAtStart: number[]; gitCommit: string };
  options: { workers: number; turnWorkers: number; seconds: number; warmupSeconds: number };
  engineRuns: EngineRunResult[];
  peerRuns: PeerRunResult[];
  failedRuns?: FailedRun[];
};
// Marginal memory is recomputed, so files written before it was stored still render.
const idle = new Map(saved.engineRuns.filter((r) => r.calls === 0).map((r) => [r.backend, r]));
const engineRuns: EngineRunWithBase[] = saved.engineRuns.map((r) => withMarginalRss(r, r.calls === 0 ? undefined : idle.get(r.backend)));
const { machine, options } = saved;
printReport(
  `Density (${saved.date}, ${machine.cpus} x ${machine.cpuModel}, commit ${machine.gitCommit.slice(0, 8)}, load ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}): ` +
    `${options.workers} media workers + ${options.turnWorkers} turn worker(s); ${options.seconds} s measured after ${options.warmupSeconds} s warm-up`,
  engineRuns,
  saved.peerRuns,
  saved.failedRuns ?? [],
);
