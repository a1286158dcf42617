/**
 * Shared plumbing for the real servers that tests start on loopback: the repository's cache
 * folders, free ports, and child processes that cannot outlive the test process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeLoopbackPort } from '../../server/local-livekit.ts';

/** Absolute path of the repository root (this file sits in `test/support/`). */
export const repoRoot: string = fileURLToPath(new URL('../../', import.meta.url));

/** A folder under the gitignored `.cache/`, created on first use. */
export function cacheDir(...parts: string[]): string {
  const dir = join(repoRoot, '.cache', ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * A folder under `.cache/` for one kind of server's logs, with entries older than a day removed:
 * logs are kept after a run for post-mortems, but must not pile up forever.
 */
export function logDir(name: string): string {
  const dir = cacheDir(name);
  const cutoffMs = Date.now() - 24 * 60 * 60 * 1000;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    try {
      if (statSync(path).mtimeMs < cutoffMs) rmSync(path, { recursive: true, force: true });
    } catch {
      // removed by a parallel run
    }
  }
  return dir;
}

/** Where `scripts/install-servers.sh` puts the Go-built servers. */
export function cachedBinary(name: string): string {
  return join(repoRoot, '.cache', 'bin', name);
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Tests run in parallel on one machine, so a fixed
 * port would clash; callers retry on an early exit to cover the window before the server binds.
 */
export const freePort = freeLoopbackPort;

/** Fails with the apt-get line that fixes it when a Debian tool is missing (tests never skip). */
export function requireTool(command: string, debianPackage: string): void {
  const probe = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `${command} is not installed; fix with: apt-get install -y --no-install-recommends ${debianPackage} (or run: CI=true bash .ci/run)`,
    );
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export async function tcpAccepts(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A server process owned by a test; see {@link startChild}. */
export interface ManagedChild {
  readonly pid: number;
  readonly logPath: string;
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<ChildExit>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** Graceful stop (SIGTERM), then SIGKILL to the whole process group after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** The last lines of the log, for error messages. */
  logTail(lines?: number): string;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous last resort when a test forgets stop(): kill every group we still own.
  process.on('exit', () => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/*
 * The command runs under a small bash supervisor that holds our stdin pipe: when the test process
 * dies in any way (even SIGKILL, which skips exit hooks), the pipe reaches EOF and the supervisor
 * sends SIGTERM to the server. Without it a crashed vitest fork leaves servers running on the shared
 * machine. `detached` makes the supervisor a process-group leader so a hard kill reaches everything.
 * A second SIGTERM follows half a second later because Go servers such as LiveKit treat the first as
 * "drain" (waiting for connected participants to leave) and only the second as "stop now".
 */
// Bash gives background jobs /dev/null as stdin, hence the copy of our pipe on fd 3.
const SUPERVISOR = [
  'exec 3<&0',
  '"$@" </dev/null 3<&- &',
  'pid=$!',
  '( cat <&3 >/dev/null; kill -TERM "$pid" 2>/dev/null; sleep 0.5; kill -TERM "$pid" 2>/dev/null ) &',
  'exec 3<&-',
  'watcher=$!',
  'wait "$pid"; rc=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$rc"',
].join('\n');

/**
 * Starts `command` with its output going to `logPath`. The child is unref'd: a forgotten server
 * never keeps the test process alive, and it is killed when the test process exits.
 */
export function startChild(command: string, args: string[], logPath: string): ManagedChild {
  installExitHook();
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn('bash', ['-c', SUPERVISOR, 'supervisor', command, ...args], {
      cwd: repoRoot,
      detached: true,
      stdio: ['pipe', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${command}`);
  liveGroups.add(pid);
  child.unref();
  const stdin = child.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
  stdin?.unref?.();

  let exitedFlag = false;
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      liveGroups.delete(pid);
      resolve({ code, signal });
    });
  });
  // A spawn error (bash missing) also ends the child; surface it through `exited`.
  child.once('error', () => undefined);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      if (exitedFlag) return;
      // Whoever awaits stop() must keep the event loop alive until the exit event arrives.
      child.ref();
      child.stdin?.end();
      const timer = sleep(graceMs, 'timeout' as const);
      const outcome = await Promise.race([exited, timer]);
      if (outcome === 'timeout') {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // exited in between
        }
        await exited;
      }
      // The server may have left grandchildren in the group (none known); make sure.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // group already empty
      }
    })();
    return stopping;
  };

  const logTail = (lines = 30): string => {
    try {
      return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  return { pid, logPath, exited, hasExited: () => exitedFlag, stop, logTail };
}

/**
 * Polls `ready` until it returns true. Fails early with the log tail when the child exits first,
 * and after `timeoutMs` otherwise.
 */
export async function waitForReady(
  child: ManagedChild,
  what: string,
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      const exit = await child.exited;
      throw new Error(`${what} exited during start-up (code ${exit.code}, signal ${exit.signal}); log ${child.logPath}:\n${child.logTail()}`);
    }
    if (await ready()) return;
    await sleep(100);
  }
  await child.stop(1000);
  throw new Error(`${what} did not become ready within ${timeoutMs} ms; log ${child.logPath}:\n${child.logTail()}`);
}
