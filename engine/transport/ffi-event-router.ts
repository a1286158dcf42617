/**
 * rtc-node hands every event from its native side to every listener: each connected Room and each
 * AudioStream looks at every audio frame of every call to find its own, and each Room takes an async
 * lock to do so. With N calls in one process that is O(N²) work per second on the main thread; at 30
 * calls it was a quarter of the engine's main thread (CPU profile of `npm run simulate -- --callers
 * 30`). This router delivers an audio stream's events to that stream only and room events to rooms
 * only, and does not broadcast them further.
 *
 * The same holds for request callbacks: every `captureFrame` (100 a second per speaking source) waits
 * for its callback with `waitFor`, a listener that saw every event of the process, audio frames
 * included. With 40 speaking sources that kept the simulated callers' main thread 98 % busy. The router
 * keeps the waiters itself, indexed by the async id of the request just made (each rtc-node `waitFor`
 * follows its own request synchronously): a callback goes to its waiter. A callback that its indexed
 * waiter does not accept is offered to every waiter, as rtc-node would, so a wrong guess costs time,
 * never a lost callback.
 *
 * It relies on four things rtc-node 1.x does, and checks each: the client singleton lives in
 * `dist/ffi_client.cjs`; `Room.connect` registers the room's listener synchronously, before its first
 * await; the AudioStream constructor creates its native stream with a `newAudioStream` request and then
 * registers one listener; `waitFor(predicate, { signal })` is the client's way to await a callback.
 * When a check fails, the object keeps rtc-node's own broadcast (correct, only slower) and a warning
 * says so once.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { AudioStream, type RemoteTrack, type Room, type RoomOptions } from '@livekit/rtc-node';

/** The parts of rtc-node's protobuf FfiEvent the router reads. */
export interface FfiEvent {
  message: { case?: string; value?: { streamHandle?: bigint; roomHandle?: bigint; asyncId?: bigint } };
}
type Listener = (event: FfiEvent) => void;
type Predicate = (event: FfiEvent) => boolean;
/** The parts of rtc-node's FfiClient the router replaces or calls. */
export interface FfiClient extends EventEmitter {
  request(request: { message: { case?: string } }): unknown;
  waitFor(predicate: Predicate, options?: { signal?: AbortSignal }): Promise<unknown>;
}

interface Waiter {
  predicate: Predicate;
  resolve(value: unknown): void;
  asyncId: bigint | undefined;
  cleanup(): void;
}

const FFI_EVENT = 'ffi_event';
/** Events a Room acts on (rtc-node's Room.processFfiEvent ignores every other kind). */
const ROOM_EVENT_CASES = new Set(['roomEvent', 'rpcMethodInvocation']);

type AudioStreamOptions = ConstructorParameters<typeof AudioStream>[1];

export class FfiEventRouter {
  /** Audio-stream listeners by native stream handle. */
  #streams = new Map<bigint, Listener>();
  #streamHandles = new Map<Listener, bigint>();
  /** Rooms by native room handle once connected. */
  #rooms = new Map<bigint, Listener>();
  #roomHandles = new Map<Listener, bigint>();
  /** Rooms whose handle is not known yet: they get every room event and filter (rtc-node's way). */
  #connectingRooms = new Set<Listener>();
  /** Set while an AudioStream or Room.connect is being created: takes their first listener. */
  #capture: ((listener: Listener) => void) | undefined;
  /** Pending `waitFor` calls, and those among them indexed by the async id of their request. */
  #waiters = new Set<Waiter>();
  #waitersByAsyncId = new Map<bigint, Waiter>();
  /** Async id of the latest request's response, until a `waitFor` takes it. */
  #lastAsyncId: bigint | undefined;
  #client: FfiClient;
  #emit: EventEmitter['emit'];
  #on: EventEmitter['on'];
  #off: EventEmitter['off'];
  #warned = false;

  constructor(client: FfiClient) {
    this.#client = client;
    this.#emit = client.emit;
    this.#on = client.on;
    this.#off = client.off;
    const on = (name: string | symbol, listener: (...args: unknown[]) => void): FfiClient => {
      const take = this.#capture;
      if (name === FFI_EVENT && take !== undefined) {
        this.#capture = undefined;
        take(listener as Listener);
        return client;
      }
      return this.#on.call(client, name, listener) as FfiClient;
    };
    const off = (name: string | symbol, listener: (...args: unknown[]) => void): FfiClient => {
      if (name !== FFI_EVENT || !this.#forget(listener as Listener)) this.#off.call(client, name, listener);
      return client;
    };
    client.on = client.addListener = on;
    client.off = client.removeListener = off;
    client.emit = (name: string | symbol, ...args: unknown[]): boolean => {
      if (name === FFI_EVENT && this.#route(args[0] as FfiEvent)) return true;
      return this.#emit.call(client, name, ...args);
    };
    if (typeof client.waitFor !== 'function' || client.waitFor.length < 1) {
      this.#warn('FfiClient.waitFor is missing');
      return;
    }
    const request = client.request;
    client.request = (req) => {
      const response = request.call(client, req);
      const asyncId = (response as { asyncId?: unknown } | undefined)?.asyncId;
      this.#lastAsyncId = typeof asyncId === 'bigint' ? asyncId : undefined;
      return response;
    };
    client.waitFor = (predicate, options) => this.#waitFor(predicate, options?.signal);
  }

  /** Callbacks awaited now. */
  get waiterCount(): number {
    return this.#waiters.size;
  }

  /** How many listeners the client broadcasts each event to (the router's own are not among them). */
  get broadcastListenerCount(): number {
    return this.#client.listenerCount(FFI_EVENT);
  }

  /** Listeners the router delivers to by handle or kind. */
  get routedListenerCount(): number {
    return this.#streams.size + this.#rooms.size + this.#connectingRooms.size;
  }

  openAudioStream(track: RemoteTrack, options: AudioStreamOptions): AudioStream {
    const client = this.#client;
    const request = client.request;
    let handle: bigint | undefined;
    let listener: Listener | undefined;
    client.request = (req) => {
      const response = request.call(client, req);
      if (req.message.case === 'newAudioStream') handle = (response as { stream?: { handle?: { id?: bigint } } }).stream?.handle?.id;
      return response;
    };
    this.#capture = (l) => (listener = l);
    let stream: AudioStream;
    try {
      stream = new AudioStream(track, options);
    } finally {
      client.request = request;
      this.#capture = undefined;
    }
    if (listener === undefined) {
      this.#warn('AudioStream registered no listener');
    } else if (handle === undefined) {
      this.#warn('AudioStream created no native stream handle');
      this.#on.call(client, FFI_EVENT, listener);
    } else {
      this.#streams.set(handle, listener);
      this.#streamHandles.set(listener, handle);
    }
    return stream;
  }

  async connectRoom(room: Room, url: string, token: string, options: RoomOptions): Promise<void> {
    let listener: Listener | undefined;
    this.#capture = (l) => {
      listener = l;
      this.#connectingRooms.add(l);
    };
    let connecting: Promise<void>;
    try {
      connecting = room.connect(url, token, options);
    } finally {
      this.#capture = undefined;
    }
    if (listener === undefined) this.#warn('Room.connect registered no listener before its first await');
    await connecting;
    // Room.connect succeeded, so the listener is still registered (a failed connect removes it).
    const handle = (room as unknown as { ffiHandle?: { handle?: bigint } }).ffiHandle?.handle;
    if (listener === undefined || !this.#connectingRooms.has(listener) || handle === undefined) return;
    this.#connectingRooms.delete(listener);
    this.#rooms.set(handle, listener);
    this.#roomHandles.set(listener, handle);
  }

  #waitFor(predicate: Predicate, signal: AbortSignal | undefined): Promise<unknown> {
    const asyncId = this.#lastAsyncId;
    this.#lastAsyncId = undefined;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('waitFor aborted'));
        return;
      }
      const onAbort = (): void => {
        waiter.cleanup();
        reject(signal?.reason ?? new Error('waitFor aborted'));
      };
      const indexed = asyncId !== undefined && !this.#waitersByAsyncId.has(asyncId);
      const waiter: Waiter = {
        predicate,
        resolve,
        asyncId: indexed ? asyncId : undefined,
        cleanup: () => {
          this.#waiters.delete(waiter);
          if (waiter.asyncId !== undefined) this.#waitersByAsyncId.delete(waiter.asyncId);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      this.#waiters.add(waiter);
      if (indexed) this.#waitersByAsyncId.set(asyncId, waiter);
      signal?.addEventListener('abort', onAbort);
    });
  }

  /** Hands `event` to the waiters that accept it; true when one did. */
  #settle(event: FfiEvent): boolean {
    const asyncId = event.message.value?.asyncId;
    if (asyncId === undefined || this.#waiters.size === 0) return false;
    const indexed = this.#waitersByAsyncId.get(asyncId);
    if (indexed !== undefined && this.#accept(indexed, event)) return true;
    let accepted = false;
    for (const waiter of this.#waiters) if (waiter !== indexed && this.#accept(waiter, event)) accepted = true;
    return accepted;
  }

  #accept(waiter: Waiter, event: FfiEvent): boolean {
    if (!waiter.predicate(event)) return false;
    waiter.cleanup();
    waiter.resolve(event.message.value);
    return true;
  }

  /** Delivers `event` where it belongs; false when it must still reach the client's listeners. */
  #route(event: FfiEvent): boolean {
    if (this.#settle(event)) return true;
    const kind = event.message.case;
    if (kind === 'audioStreamEvent') {
      const handle = event.message.value?.streamHandle;
      const listener = handle === undefined ? undefined : this.#streams.get(handle);
      listener?.(event);
      return listener !== undefined;
    }
    if (kind === undefined || !ROOM_EVENT_CASES.has(kind)) return false;
    if (kind === 'roomEvent') {
      const handle = event.message.value?.roomHandle;
      const listener = handle === undefined ? undefined : this.#rooms.get(handle);
      if (listener !== undefined) {
        listener(event);
        return true;
      }
    } else {
      for (const listener of this.#rooms.values()) listener(event);
    }
    for (const listener of this.#connectingRooms) listener(event);
    // Rooms connected without the router (plain `Room.connect`) listen on the client itself.
    return false;
  }

  /** True when `listener` was one of the router's (now removed). */
  #forget(listener: Listener): boolean {
    const stream = this.#streamHandles.get(listener);
    if (stream !== undefined) {
      this.#streamHandles.delete(listener);
      this.#streams.delete(stream);
      return true;
    }
    const room = this.#roomHandles.get(listener);
    if (room !== undefined) {
      this.#roomHandles.delete(listener);
      this.#rooms.delete(room);
      return true;
    }
    return this.#connectingRooms.delete(listener);
  }

  #warn(what: string): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(`${what}: this rtc-node version is not the one the FFI event router was written for; its events are broadcast to every listener (slower with many calls)`, { code: 'VE_FFI_ROUTER' });
  }
}

let router: FfiEventRouter | undefined;

/** The process's router, installed on rtc-node's client singleton on first use. */
export function ffiEventRouter(): FfiEventRouter {
  if (router === undefined) {
    // The client class is not exported; its module is, by absolute path, the same one rtc-node loaded.
    const require = createRequire(import.meta.url);
    const { FfiClient } = require(join(dirname(require.resolve('@livekit/rtc-node')), 'ffi_client.cjs')) as { FfiClient: { instance: FfiClient } };
    router = new FfiEventRouter(FfiClient.instance);
  }
  return router;
}

/** `new AudioStream(track, options)`, with the stream's events routed to it alone. */
export function openAudioStream(track: RemoteTrack, options: AudioStreamOptions): AudioStream {
  return ffiEventRouter().openAudioStream(track, options);
}

/** `room.connect(url, token, options)`, with the room's events routed to it alone. */
export function connectRoom(room: Room, url: string, token: string, options: RoomOptions): Promise<void> {
  return ffiEventRouter().connectRoom(room, url, token, options);
}
