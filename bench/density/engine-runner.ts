/**
 * Runs `run-engine.ts` in a fresh child process and returns the JSON line it prints, so that each
 * configuration's RSS is its own and no run inherits another's heap, JIT state or threads.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VoiceError } from '../../engine/errors.ts';
import type { BackendName } from '../../engine/inference/backend.ts';
import type { EngineRunResult } from './common.ts';

const RUN_ENGINE = fileURLToPath(new URL('./run-engine.ts', import.meta.url));

/** The child exited without printing its result line (crash, timeout, bad option). */
export class BenchChildError extends VoiceError {
  constructor(message: string) {
    super('VE_BENCH_CHILD_FAILED', message);
    this.name = 'BenchChildError';
  }
}

export interface EngineRunOptions {
  calls: number;
  backend: BackendName;
  seconds: number;
  warmupSeconds: number;
  /** Unset: the configuration's (ENGINE_WORKERS / ENGINE_TURN_WORKERS), as `npm start` runs. */
  workers?: number;
  turnWorkers?: number;
  tickMs: number;
  seed: number;
  /** Write V8 CPU profiles of every thread of the child here (node --cpu-prof). */
  cpuProfileDir?: string;
}

export function runEngine(options: EngineRunOptions): Promise<EngineRunResult> {
  const nodeArgs: string[] = [];
  if (options.cpuProfileDir !== undefined) {
    mkdirSync(options.cpuProfileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`);
  }
  const args = [
    ...nodeArgs,
    RUN_ENGINE,
    '--calls', String(options.calls),
    '--backend', options.backend,
    '--seconds', String(options.seconds),
    '--warmup-seconds', String(options.warmupSeconds),
    ...(options.workers !== undefined ? ['--workers', String(options.workers)] : []),
    ...(options.turnWorkers !== undefined ? ['--turn-workers', String(options.turnWorkers)] : []),
    '--tick-ms', String(options.tickMs),
    '--seed', String(options.seed),
  ];
  // Engine start (wasm warm-up), the two phases and a generous margin for a loaded machine.
  const timeoutMs = (options.warmupSeconds + options.seconds + 240) * 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new BenchChildError(`cannot start ${RUN_ENGINE}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) {
        reject(new BenchChildError(`engine run (${options.backend}, ${options.calls} calls) exited with ${signal ?? code} and no result`));
        return;
      }
      resolve(JSON.parse(line) as EngineRunResult);
    });
  });
}
