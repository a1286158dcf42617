/**
 * The main-thread side of the media workers. One Piscina pool whose every thread runs one long `serve`
 * task; calls are pinned to a worker (its VAD state lives there), placed on the least-loaded worker,
 * rebalanced when a call ends or a worker comes back, and re-homed with a `worker_restarted` notice
 * when a worker dies.
 *
 * Faults are bounded: a dead worker is restarted at once the first time and with exponential backoff
 * after that; a slot that dies more often than its restart policy allows stays down (`onWorkerDown`).
 * A call whose audio killed two workers (or that was on two workers that died without saying whose
 * audio they were on) is not re-homed to kill a third: the pool drops it and reports `onCallFailed`,
 * as it does for calls left with no worker that could ever serve them.
 */
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Doorbell } from '../ring/doorbell.ts';
import { PcmRing } from '../ring/pcm-ring.ts';
import { VAD_SAMPLE_RATE } from '../stages/silero-vad.ts';
import { ClosedError, VoiceError } from '../errors.ts';
import { NO_CALL_TAG, WorkerActivity } from './worker-activity.ts';
import type { CallSnapshot, FromWorker, MediaWorkerSettings, ToWorker } from './protocol.ts';

export interface WorkerRestartPolicy {
  /** Delay before the second restart within `windowMs`; doubles for each further one. The first is immediate. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Restarts of one slot allowed within `windowMs`; the next death leaves the slot down. */
  maxRestarts: number;
  /** Also the window in which two worker deaths make a call a suspect of poison audio. */
  windowMs: number;
}

export const DEFAULT_RESTART_POLICY: WorkerRestartPolicy = { initialDelayMs: 500, maxDelayMs: 10_000, maxRestarts: 5, windowMs: 60_000 };

export interface MediaPoolOptions {
  workers: number;
  settings: Omit<MediaWorkerSettings, 'workerId'>;
  restart?: Partial<WorkerRestartPolicy>;
}

export interface PoolCall {
  callId: string;
  inputRing: SharedArrayBuffer;
  inputSampleRate: number;
  /** See `TurnBoundary`. */
  turnBoundary: SharedArrayBuffer;
}

/** Why the pool stopped serving a call; `reason` is what the call's end reports. */
export interface CallFailure {
  code: 'VE_MEDIA_CRASHED' | 'VE_NO_MEDIA_WORKER';
  message: string;
  reason: 'media_crashed' | 'media_unavailable';
}

export interface MediaPoolListener {
  onMessage(workerId: number, message: FromWorker): void;
  /** The calls of a dead worker now live on `toWorkerId`; their VAD state and history were lost. */
  onWorkerRestarted(callIds: string[], fromWorkerId: number, toWorkerId: number, error: Error): void;
  /** The pool no longer serves this call (it forgot it); the call should end. */
  onCallFailed(callId: string, failure: CallFailure): void;
  /** A worker slot died more often than the restart policy allows and stays down. */
  onWorkerDown(workerId: number, error: Error): void;
}

type SlotState = 'starting' | 'live' | 'backoff' | 'down';

class WorkerSlot {
  readonly id: number;
  readonly doorbell = Doorbell.create();
  readonly activity = WorkerActivity.create();
  readonly calls = new Set<string>();
  port: MessagePort | null = null;
  state: SlotState = 'starting';
  generation = 0;
  ready: Promise<void> = Promise.resolve();
  restarts = 0;
  /** Deaths within the restart window, oldest first (performance.now). */
  deaths: number[] = [];
  restartTimer: NodeJS.Timeout | null = null;
  /** Fault injection: starts still to fail. */
  failStarts = 0;

  constructor(id: number) {
    this.id = id;
  }

  get live(): boolean {
    return this.state === 'live';
  }

  send(message: ToWorker): void {
    this.port?.postMessage(message);
  }
}

interface CallEntry {
  call: PoolCall;
  ring: PcmRing;
  /** Null while the call is on no worker: being moved, or waiting for one to come back. */
  slot: WorkerSlot | null;
  tag: number;
  /** When workers holding this call died (within the restart window). */
  crashes: number[];
}

export interface MediaPoolStats {
  /** `down`: died more often than the restart policy allows; it is not restarted again. */
  workers: Array<{ id: number; live: boolean; down: boolean; calls: number; restarts: number }>;
  /** Calls whose worker died while no other could take them, waiting for one to come back. */
  waitingCalls: number;
  /** Moves whose target worker died on the way, so the call went to another live worker. */
  movesRedirected: number;
}

export class WorkerUnavailableError extends VoiceError {
  constructor() {
    super('VE_NO_MEDIA_WORKER', 'no media worker is running', { status: 503, retryable: true });
  }
}

export class MediaPool {
  readonly options: MediaPoolOptions;
  readonly restartPolicy: WorkerRestartPolicy;
  #piscina: Piscina;
  #slots: WorkerSlot[];
  #calls = new Map<string, CallEntry>();
  /** Calls whose worker died while no other could take them, with the worker they came from. */
  #homeless = new Map<string, { fromWorkerId: number; error: Error }>();
  #listener: MediaPoolListener;
  #pendingDetach = new Map<number, { slot: WorkerSlot; resolve: (snapshot: CallSnapshot | null) => void }>();
  #nextRequestId = 1;
  #nextTag = NO_CALL_TAG + 1;
  #crashOnAudio = new Set<string>();
  /** Moves whose target worker died before the call arrived, so the call went elsewhere. */
  #movesRedirected = 0;
  #closed = false;
  #moving = false;
  #toRing = new Set<WorkerSlot>();
  #ringScheduled = false;

  constructor(options: MediaPoolOptions, listener: MediaPoolListener) {
    this.options = options;
    this.restartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restart };
    this.#listener = listener;
    this.#piscina = new Piscina({
      filename: fileURLToPath(new URL('./media-worker.ts', import.meta.url)),
      minThreads: options.workers,
      maxThreads: options.workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      atomics: 'disabled',
    });
    this.#slots = Array.from({ length: options.workers }, (_, i) => new WorkerSlot(i));
  }

  /** Starts every worker and waits until each has loaded its models and warmed up. */
  async start(): Promise<void> {
    await Promise.all(this.#slots.map((slot) => this.#startSlot(slot)));
  }

  #startSlot(slot: WorkerSlot): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const generation = ++slot.generation;
    slot.port = port1;
    slot.state = 'starting';
    slot.activity.leave();
    let markReady!: () => void;
    let failReady!: (error: Error) => void;
    slot.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    port1.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        slot.state = 'live';
        markReady();
      } else if (message.type === 'detached') {
        this.#pendingDetach.get(message.requestId)?.resolve(message.snapshot);
        this.#pendingDetach.delete(message.requestId);
      }
      this.#listener.onMessage(slot.id, message);
    });
    const injectStartFailure = this.options.settings.allowFaultInjection && slot.failStarts > 0;
    if (injectStartFailure) slot.failStarts--;
    const task = {
      port: port2,
      doorbell: slot.doorbell.buffer,
      activity: slot.activity.buffer,
      settings: { ...this.options.settings, workerId: slot.id, injectStartFailure },
    };
    this.#piscina.run(task, { transferList: [port2] }).then(
      () => {
        if (!this.#closed && generation === slot.generation) this.#onWorkerDied(slot, new Error('media worker stopped unexpectedly'));
      },
      (error: Error) => {
        failReady(error);
        if (!this.#closed && generation === slot.generation) this.#onWorkerDied(slot, error);
      },
    );
    return slot.ready;
  }

  #onWorkerDied(slot: WorkerSlot, error: Error): void {
    const culpritTag = slot.activity.current();
    slot.state = 'backoff';
    slot.port?.close();
    slot.port = null;
    const orphans = [...slot.calls];
    slot.calls.clear();
    // A dead worker answers no detach: its calls' state is gone anyway.
    for (const [requestId, pending] of this.#pendingDetach) {
      if (pending.slot !== slot) continue;
      pending.resolve(null);
      this.#pendingDetach.delete(requestId);
    }
    this.#scheduleRestart(slot, error);
    // Whose audio was it? The worker's activity word names the call when it died inside one call's work
    // (that call may have left meanwhile: then nobody here is to blame); otherwise every call it held
    // is a suspect.
    const now = performance.now();
    const suspects = culpritTag === NO_CALL_TAG ? orphans : orphans.filter((callId) => this.#calls.get(callId)?.tag === culpritTag);
    for (const callId of suspects) {
      const entry = this.#calls.get(callId)!;
      entry.crashes = entry.crashes.filter((at) => now - at < this.restartPolicy.windowMs);
      entry.crashes.push(now);
      if (entry.crashes.length >= 2) {
        this.#fail(callId, {
          code: 'VE_MEDIA_CRASHED',
          message: `two media workers died within ${this.restartPolicy.windowMs} ms while processing this call's audio (last: ${error.message})`,
          reason: 'media_crashed',
        });
      }
    }
    for (const callId of orphans) this.#place(callId, slot.id, error);
    this.#failHomelessIfHopeless();
  }

  #scheduleRestart(slot: WorkerSlot, error: Error): void {
    const policy = this.restartPolicy;
    const now = performance.now();
    slot.deaths = slot.deaths.filter((at) => now - at < policy.windowMs);
    slot.deaths.push(now);
    if (slot.deaths.length > policy.maxRestarts) {
      slot.state = 'down';
      this.#listener.onWorkerDown(slot.id, error);
      return;
    }
    // A worker that fails at start would otherwise restart in a tight loop.
    const delayMs = slot.deaths.length === 1 ? 0 : Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (slot.deaths.length - 2));
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.#closed) return;
      slot.restarts++;
      this.#startSlot(slot).then(
        () => this.#onSlotBack(),
        () => {}, // its death is handled like any other
      );
    }, delayMs);
  }

  /** A worker is (back) up: it takes the calls that were waiting and a share of the others. */
  #onSlotBack(): void {
    for (const [callId, { fromWorkerId, error }] of this.#homeless) {
      this.#homeless.delete(callId);
      this.#place(callId, fromWorkerId, error);
    }
    void this.#rebalance();
  }

  /** Puts a call whose worker died (its state lost) on the least-loaded live worker, or makes it wait. */
  #place(callId: string, fromWorkerId: number, error: Error): void {
    const entry = this.#calls.get(callId);
    if (!entry) return;
    const target = this.#leastLoaded();
    if (!target) {
      entry.slot = null;
      this.#homeless.set(callId, { fromWorkerId, error });
      return;
    }
    // Audio the dead worker read but never decided is lost; the stream offsets stay true to the audio.
    const startOffsetSamples = Math.floor((entry.ring.totalReadSamples() * VAD_SAMPLE_RATE) / entry.call.inputSampleRate);
    this.#attach(target, entry, { startOffsetSamples });
    this.#listener.onWorkerRestarted([callId], fromWorkerId, target.id, error);
  }

  #attach(slot: WorkerSlot, entry: CallEntry, state: { snapshot?: CallSnapshot; startOffsetSamples?: number }): void {
    const { callId, inputRing, inputSampleRate, turnBoundary } = entry.call;
    entry.slot = slot;
    slot.calls.add(callId);
    const crashOnAudio = this.#crashOnAudio.has(callId) || undefined;
    slot.send({ type: 'attach', callId, inputRing, inputSampleRate, turnBoundary, tag: entry.tag, crashOnAudio, ...state });
    slot.doorbell.ring();
  }

  /** Calls waiting for a worker when no slot will ever come back can only end. */
  #failHomelessIfHopeless(): void {
    if (this.#homeless.size === 0 || this.#slots.some((s) => s.state !== 'down')) return;
    for (const callId of [...this.#homeless.keys()]) {
      this.#fail(callId, { code: 'VE_NO_MEDIA_WORKER', message: 'every media worker is down', reason: 'media_unavailable' });
    }
  }

  #fail(callId: string, failure: CallFailure): void {
    const entry = this.#calls.get(callId);
    if (!entry) return;
    this.#calls.delete(callId);
    this.#homeless.delete(callId);
    this.#crashOnAudio.delete(callId);
    entry.slot?.calls.delete(callId);
    entry.slot = null;
    this.#listener.onCallFailed(callId, failure);
  }

  #leastLoaded(exclude?: WorkerSlot): WorkerSlot | null {
    let best: WorkerSlot | null = null;
    for (const slot of this.#slots) {
      if (!slot.live || slot === exclude) continue;
      if (!best || slot.calls.size < best.calls.size) best = slot;
    }
    return best;
  }

  /** Places a call on the least-loaded live worker. */
  addCall(call: PoolCall): number {
    if (this.#closed) throw new ClosedError('media pool');
    if (this.#calls.has(call.callId)) throw new VoiceError('VE_CALL_EXISTS', `call ${call.callId} is already attached`, { status: 409 });
    const slot = this.#leastLoaded();
    if (!slot) throw new WorkerUnavailableError();
    const entry: CallEntry = { call, ring: PcmRing.attach(call.inputRing), slot: null, tag: this.#nextTag++, crashes: [] };
    this.#calls.set(call.callId, entry);
    this.#attach(slot, entry, {});
    return slot.id;
  }

  /**
   * Tells the call's worker that its ring has new audio. Rings each worker's doorbell at most once per
   * turn of the event loop (an Atomics.notify costs tens of microseconds; frames of many calls arrive
   * in the same turn).
   */
  notify(callId: string): void {
    const slot = this.#calls.get(callId)?.slot;
    if (!slot) return;
    this.#toRing.add(slot);
    if (this.#ringScheduled) return;
    this.#ringScheduled = true;
    setImmediate(() => {
      this.#ringScheduled = false;
      for (const pending of this.#toRing) pending.doorbell.ring();
      this.#toRing.clear();
    });
  }

  workerOf(callId: string): number | undefined {
    return this.#calls.get(callId)?.slot?.id;
  }

  async removeCall(callId: string): Promise<void> {
    const entry = this.#calls.get(callId);
    if (!entry) return;
    this.#calls.delete(callId);
    this.#homeless.delete(callId);
    this.#crashOnAudio.delete(callId);
    const slot = entry.slot;
    entry.slot = null;
    if (slot) {
      slot.calls.delete(callId);
      if (slot.live) await this.#detach(slot, callId);
    }
    await this.#rebalance();
  }

  #detach(slot: WorkerSlot, callId: string): Promise<CallSnapshot | null> {
    const requestId = this.#nextRequestId++;
    return new Promise((resolve) => {
      this.#pendingDetach.set(requestId, { slot, resolve });
      slot.send({ type: 'detach', callId, requestId });
      slot.doorbell.ring();
    });
  }

  /** Moves one call at a time from the busiest worker to the idlest until they differ by at most one. */
  async #rebalance(): Promise<void> {
    if (this.#moving || this.#closed) return;
    this.#moving = true;
    try {
      for (;;) {
        const live = this.#slots.filter((s) => s.live);
        if (live.length < 2) return;
        const busiest = live.reduce((a, b) => (b.calls.size > a.calls.size ? b : a));
        const idlest = live.reduce((a, b) => (b.calls.size < a.calls.size ? b : a));
        if (busiest.calls.size - idlest.calls.size <= 1) return;
        const callId = busiest.calls.values().next().value as string;
        const entry = this.#calls.get(callId)!;
        // In flight: on no worker until it is attached again, whatever happens meanwhile.
        busiest.calls.delete(callId);
        entry.slot = null;
        const snapshot = await this.#detach(busiest, callId);
        if (this.#calls.get(callId) !== entry) continue; // ended (or failed) while moving
        if (snapshot === null) {
          // The source died before it answered: the state is lost, as for every call of a dead worker.
          this.#place(callId, busiest.id, new Error(`media worker ${busiest.id} died while a call was moving off it`));
          continue;
        }
        const target = idlest.live ? idlest : this.#leastLoaded();
        if (target !== idlest) this.#movesRedirected++;
        if (target) this.#attach(target, entry, { snapshot });
        else this.#place(callId, idlest.id, new Error(`media worker ${idlest.id} died while a call was moving onto it`));
      }
    } finally {
      this.#moving = false;
    }
  }

  /** Test hook: makes a worker's thread die (only when the pool allows fault injection). */
  crashWorker(workerId: number): void {
    const slot = this.#slots[workerId];
    slot.send({ type: 'crash' });
    slot.doorbell.ring();
  }

  /** Test hook: the next `count` starts of this worker fail (only when the pool allows fault injection). */
  failWorkerStarts(workerId: number, count: number): void {
    this.#slots[workerId].failStarts = count;
  }

  /** Test hook: the worker blocks its thread this long before it handles further messages (only with fault injection). */
  stallWorker(workerId: number, durationMs: number): void {
    const slot = this.#slots[workerId];
    slot.send({ type: 'stall', durationMs });
    slot.doorbell.ring();
  }

  /** Test hook: processing this call's audio throws, on any worker, like poison audio would. */
  crashOnCallAudio(callId: string): void {
    const entry = this.#calls.get(callId);
    if (!entry || !this.options.settings.allowFaultInjection) return;
    this.#crashOnAudio.add(callId);
    entry.slot?.send({ type: 'crash_on_audio', callId });
    entry.slot?.doorbell.ring();
  }

  stats(): MediaPoolStats {
    return {
      workers: this.#slots.map((s) => ({ id: s.id, live: s.live, down: s.state === 'down', calls: s.calls.size, restarts: s.restarts })),
      waitingCalls: this.#homeless.size,
      movesRedirected: this.#movesRedirected,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.send({ type: 'stop' });
      slot.doorbell.ring();
    }
    for (const pending of this.#pendingDetach.values()) pending.resolve(null);
    this.#pendingDetach.clear();
    await this.#piscina.destroy();
    for (const slot of this.#slots) slot.port?.close();
  }
}
