/**
 * `node server/main.ts` as a child process, started the way a newcomer runs `npm start`: no LiveKit,
 * database or provider settings, a temporary DATA_DIR and a fixed API key. For the end-to-end tests of
 * the start command and the live page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './caller.ts';
import { freePort, repoRoot } from './process.ts';

export const ENGINE_API_KEY = 'main-test-key-0123456789abcdef';

export interface EngineProcess {
  child: ChildProcess;
  baseUrl: string;
  dataDir: string;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** fetch() against the API with {@link ENGINE_API_KEY}. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** SIGKILL if still running, and remove the data folder. */
  kill(): Promise<void>;
}

/** Spawns the start command and resolves once its banner says it is running. `args`: e.g. `['--role', 'engine']`. */
export async function startEngineProcess(extraEnv: Record<string, string> = {}, opts: { args?: string[] } = {}): Promise<EngineProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 've-main-'));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    PORT: String(port),
    DATA_DIR: dataDir,
    RECORDING_DIR: join(dataDir, 'recordings'),
    API_KEYS: `${ENGINE_API_KEY}:tester`,
    ENGINE_WORKERS: '1',
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const child = spawn(process.execPath, ['server/main.ts', ...(opts.args ?? [])], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'the engine to become ready',
      () => {
        if (child.exitCode !== null) throw new Error(`server/main.ts exited early (${child.exitCode}):\n${output}`);
        return output.includes('voice-density-engine is running');
      },
      120_000,
    );
  } catch (error) {
    await kill();
    throw error;
  }
  return {
    child,
    baseUrl,
    dataDir,
    output: () => output,
    exited,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${ENGINE_API_KEY}`);
      if (init.json !== undefined) headers.set('content-type', 'application/json');
      return fetch(`${baseUrl}${path}`, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
    },
    kill,
  };
}
