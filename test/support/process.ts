/**
 * Shared plumbing for the real servers that tests start on loopback: the repository's cache
 * folders, free ports, and child processes that cannot outlive the test process.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
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

export { startChild, type ChildExit, type ManagedChild } from '../../server/supervised-child.ts';
import type { ManagedChild } from '../../server/supervised-child.ts';

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
