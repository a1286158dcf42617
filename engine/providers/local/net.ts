import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Shared plumbing of the fake vendor servers: loopback listening, latency, clean shutdown. */

/** Resolve after `ms` (immediately for 0); rejects with the signal's reason if it aborts first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Listen on 127.0.0.1 with an OS-assigned port; returns the port. */
export function listenLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Tracks raw sockets so `close()` can end hung requests too (a server "hanging forever" would
 * otherwise keep `server.close()` waiting forever).
 */
export class SocketTracker {
  private readonly sockets = new Set<Socket>();

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

/** Close an HTTP server after destroying every open socket. Idempotent. */
export async function closeServer(server: Server, tracker: SocketTracker): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  tracker.destroyAll();
  await closed;
}

/** A latency/failure plan applied to the next `count` requests or connections, then used up. */
export class FailurePlan<T> {
  private readonly queue: Array<{ failure: T; remaining: number }> = [];

  add(failure: T, count: number): void {
    if (count > 0) this.queue.push({ failure, remaining: count });
  }

  /** The failure for the request arriving now, if any. */
  take(): T | undefined {
    const head = this.queue[0];
    if (head === undefined) return undefined;
    head.remaining--;
    if (head.remaining <= 0) this.queue.shift();
    return head.failure;
  }

  clear(): void {
    this.queue.length = 0;
  }
}
