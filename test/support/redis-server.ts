/**
 * Debian's redis-server on loopback, without persistence: what several LiveKit nodes share in
 * multi-node tests (`startLiveKitServer({ redisAddress })`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, logDir, requireTool, startChild, waitForReady, type ManagedChild } from './process.ts';

export interface RedisServerHandle {
  /** `127.0.0.1:PORT`, the form LiveKit's `redis.address` takes. */
  address: string;
  /** Idempotent. */
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServerHandle> {
  requireTool('redis-server', 'redis-server');
  // Its working directory, so even a stray dump never lands in the repository.
  const workDir = mkdtempSync(join(tmpdir(), 'redis-'));
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const child: ManagedChild = startChild(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir],
      join(logDir('redis'), `${port}.log`),
    );
    try {
      await waitForReady(child, `redis-server on port ${port}`, () => answersPong(port));
    } catch (err) {
      lastError = err;
      await child.stop(1000);
      continue;
    }
    let stopping: Promise<void> | undefined;
    return {
      address: `127.0.0.1:${port}`,
      stop: () => {
        stopping ??= (async () => {
          await child.stop();
          rmSync(workDir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  }
  rmSync(workDir, { recursive: true, force: true });
  throw lastError;
}

/** True when the server answers an inline PING with +PONG (it accepts connections before it loads). */
export async function answersPong(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = new Socket();
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}
