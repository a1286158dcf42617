/**
 * The router's request callbacks, on a stand-in for rtc-node's FfiClient (the same `request` /
 * `waitFor` / `emit` shape, no native side): each callback reaches its waiter without being offered to
 * the others, a waiter whose request the router guessed wrong still gets its callback, aborts work, and
 * events nobody routes still reach the client's own listeners. Stream and room routing on a real LiveKit
 * server: test/ffi-event-router.test.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FfiEventRouter, type FfiClient, type FfiEvent } from './ffi-event-router.ts';

const FFI_EVENT = 'ffi_event';

/** rtc-node's client in miniature: requests answer with a fresh async id; waitFor listens to everything. */
class StandInClient extends EventEmitter implements FfiClient {
  #nextAsyncId = 0n;

  request(_request: { message: { case?: string } }): { asyncId: bigint } {
    return { asyncId: ++this.#nextAsyncId };
  }

  waitFor(predicate: (event: FfiEvent) => boolean, _options?: { signal?: AbortSignal }): Promise<unknown> {
    return new Promise((resolve) => {
      const listener = (event: FfiEvent): void => {
        if (!predicate(event)) return;
        this.off(FFI_EVENT, listener);
        resolve(event.message.value);
      };
      this.on(FFI_EVENT, listener);
    });
  }
}

function callback(kind: string, asyncId: bigint): FfiEvent {
  return { message: { case: kind, value: { asyncId } } };
}

/** What rtc-node's AudioSource.captureFrame does: a request, then a wait for its own callback. */
function captureFrame(client: FfiClient, checks: { count: number }): { asyncId: bigint; done: Promise<unknown> } {
  const { asyncId } = client.request({ message: { case: 'captureAudioFrame' } }) as { asyncId: bigint };
  const done = client.waitFor((event) => {
    checks.count++;
    return event.message.case === 'captureAudioFrame' && event.message.value?.asyncId === asyncId;
  });
  return { asyncId, done };
}

describe('FFI event router: request callbacks', () => {
  it('hands each callback to its own waiter only, whatever the number of waiters', async () => {
    const client = new StandInClient();
    const router = new FfiEventRouter(client);
    const checks = { count: 0 };
    const captures = Array.from({ length: 200 }, () => captureFrame(client, checks));
    expect(router.waiterCount).toBe(200);
    for (const { asyncId } of captures.toReversed()) client.emit(FFI_EVENT, callback('captureAudioFrame', asyncId));
    const values = await Promise.all(captures.map((c) => c.done));
    expect(values).toEqual(captures.map((c) => ({ asyncId: c.asyncId })));
    // rtc-node's broadcast would have asked about 200 * 201 / 2 predicates.
    expect(checks.count).toBe(200);
    expect(router.waiterCount).toBe(0);
    expect(client.listenerCount(FFI_EVENT)).toBe(0);
  });

  it('still delivers a callback whose request was not the one just made', async () => {
    const client = new StandInClient();
    new FfiEventRouter(client);
    const stats = { asyncId: 0n };
    // A request whose callback nobody awaits, then a wait for an id the caller chose itself.
    client.request({ message: { case: 'publishData' } });
    stats.asyncId = 1000n;
    const done = client.waitFor((event) => event.message.case === 'getSessionStats' && event.message.value?.asyncId === stats.asyncId);
    client.emit(FFI_EVENT, callback('getSessionStats', 1000n));
    await expect(done).resolves.toEqual({ asyncId: 1000n });
  });

  it('rejects and forgets a wait that is aborted', async () => {
    const client = new StandInClient();
    const router = new FfiEventRouter(client);
    const abort = new AbortController();
    client.request({ message: { case: 'connect' } });
    const done = client.waitFor(() => true, { signal: abort.signal });
    abort.abort(new Error('gave up'));
    await expect(done).rejects.toThrow('gave up');
    expect(router.waiterCount).toBe(0);
    await expect(client.waitFor(() => true, { signal: abort.signal })).rejects.toThrow('gave up');
  });

  it('passes events it neither routes nor awaits to the client listeners', () => {
    const client = new StandInClient();
    new FfiEventRouter(client);
    const seen: Array<string | undefined> = [];
    client.on(FFI_EVENT, (event: FfiEvent) => seen.push(event.message.case));
    client.emit(FFI_EVENT, { message: { case: 'textStreamReaderEvent', value: {} } });
    client.emit(FFI_EVENT, { message: { case: 'audioStreamEvent', value: { streamHandle: 7n } } });
    client.emit(FFI_EVENT, { message: { case: 'roomEvent', value: { roomHandle: 9n } } });
    client.emit(FFI_EVENT, callback('captureAudioFrame', 42n));
    expect(seen).toEqual(['textStreamReaderEvent', 'audioStreamEvent', 'roomEvent', 'captureAudioFrame']);
  });
});
