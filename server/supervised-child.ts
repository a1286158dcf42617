/**
 * Child processes that cannot outlive their owner: the local LiveKit server of `npm start`, and the
 * real servers the tests start on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { VoiceError } from '../engine/errors.ts';

/** Root of the project (this file sits in `server/`); children run there. */
const PROJECT_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A server process owned by this process (LiveKit for `npm start`, test servers); see {@link startChild}. */
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
  // Synchronous last resort when an owner forgets stop(): kill every group we still own.
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
 * The command runs under a small bash supervisor that holds our stdin pipe: when this process
 * dies in any way (even SIGKILL, which skips exit hooks), the pipe reaches EOF and the supervisor
 * sends SIGTERM to the server. Without it a crashed engine or vitest fork leaves servers running on the
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
 * never keeps its owner alive, and it is killed when the owner exits.
 */
export function startChild(command: string, args: string[], logPath: string): ManagedChild {
  installExitHook();
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn('bash', ['-c', SUPERVISOR, 'supervisor', command, ...args], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['pipe', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new VoiceError('VE_CHILD_START_FAILED', `could not start ${command}`);
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
