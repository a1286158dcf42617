/**
 * The main-thread side of the media workers. One Piscina pool whose every thread runs one long `serve`
 * task; calls are pinned to a worker (its VAD state lives there), placed on the least-loaded worker,
 * rebalanced when a call ends, and re-homed with a `worker_restarted` notice when a worker dies.
 */
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Doorbell } from '../ring/doorbell.ts';
import { PcmRing } from '../ring/pcm-ring.ts';
import { VAD_SAMPLE_RATE } from '../stages/silero-vad.ts';
import { ClosedError, VoiceError } from '../errors.ts';
import type { CallSnapshot, FromWorker, MediaWorkerSettings, ToWorker } from './protocol.ts';

export interface MediaPoolOptions {
  workers: number;
  settings: Omit<MediaWorkerSettings, 'workerId'>;
}

export interface PoolCall {
  callId: string;
  inputRing: SharedArrayBuffer;
  inputSampleRate: number;
  /** See `TurnBoundary`. */
  turnBoundary: SharedArrayBuffer;
}

export interface MediaPoolListener {
  onMessage(workerId: number, message: FromWorker): void;
  /** The calls of a dead worker now live on `toWorkerId`; their VAD state and history were lost. */
  onWorkerRestarted(callIds: string[], fromWorkerId: number, toWorkerId: number, error: Error): void;
}

class WorkerSlot {
  readonly id: number;
  readonly doorbell = Doorbell.create();
  readonly calls = new Set<string>();
  port: MessagePort | null = null;
  live = false;
  generation = 0;
  ready: Promise<void> = Promise.resolve();
  restarts = 0;

  constructor(id: number) {
    this.id = id;
  }

  send(message: ToWorker): void {
    this.port?.postMessage(message);
  }
}

export class WorkerUnavailableError extends VoiceError {
  constructor() {
    super('VE_NO_MEDIA_WORKER', 'no media worker is running', { status: 503, retryable: true });
  }
}

export class MediaPool {
  readonly options: MediaPoolOptions;
  #piscina: Piscina;
  #slots: WorkerSlot[];
  #calls = new Map<string, { call: PoolCall; slot: WorkerSlot }>();
  #listener: MediaPoolListener;
  #pendingDetach = new Map<number, { slot: WorkerSlot; resolve: (snapshot: CallSnapshot | null) => void }>();
  #nextRequestId = 1;
  #closed = false;
  #moving = false;
  #toRing = new Set<WorkerSlot>();
  #ringScheduled = false;

  constructor(options: MediaPoolOptions, listener: MediaPoolListener) {
    this.options = options;
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
    let markReady!: () => void;
    let failReady!: (error: Error) => void;
    slot.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    port1.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        slot.live = true;
        markReady();
      } else if (message.type === 'detached') {
        this.#pendingDetach.get(message.requestId)?.resolve(message.snapshot);
        this.#pendingDetach.delete(message.requestId);
      }
      this.#listener.onMessage(slot.id, message);
    });
    const task = { port: port2, doorbell: slot.doorbell.buffer, settings: { ...this.options.settings, workerId: slot.id } };
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
    slot.live = false;
    slot.restarts++;
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
    const restarted = this.#startSlot(slot);
    restarted.catch(() => {});
    const target = this.#leastLoaded(slot);
    if (target) {
      this.#rehome(orphans, slot, target, error);
    } else {
      // The only worker died: its replacement takes the calls back once it is warm.
      restarted.then(() => this.#rehome(orphans, slot, slot, error), () => {});
    }
  }

  #rehome(callIds: string[], from: WorkerSlot, to: WorkerSlot, error: Error): void {
    const moved: string[] = [];
    for (const callId of callIds) {
      const entry = this.#calls.get(callId);
      if (!entry) continue;
      entry.slot = to;
      to.calls.add(callId);
      // Audio the dead worker read but never decided is lost; the stream offsets stay true to the audio.
      const ring = PcmRing.attach(entry.call.inputRing);
      const startOffsetSamples = Math.floor((ring.totalReadSamples() * VAD_SAMPLE_RATE) / entry.call.inputSampleRate);
      to.send({ type: 'attach', callId, inputRing: entry.call.inputRing, inputSampleRate: entry.call.inputSampleRate, turnBoundary: entry.call.turnBoundary, startOffsetSamples });
      to.doorbell.ring();
      moved.push(callId);
    }
    if (moved.length > 0) this.#listener.onWorkerRestarted(moved, from.id, to.id, error);
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
    slot.calls.add(call.callId);
    this.#calls.set(call.callId, { call, slot });
    slot.send({ type: 'attach', callId: call.callId, inputRing: call.inputRing, inputSampleRate: call.inputSampleRate, turnBoundary: call.turnBoundary });
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
    return this.#calls.get(callId)?.slot.id;
  }

  async removeCall(callId: string): Promise<void> {
    const entry = this.#calls.get(callId);
    if (!entry) return;
    this.#calls.delete(callId);
    entry.slot.calls.delete(callId);
    if (entry.slot.live) await this.#detach(entry.slot, callId);
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
    if (this.#moving) return;
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
        busiest.calls.delete(callId);
        const snapshot = await this.#detach(busiest, callId);
        if (!this.#calls.has(callId) || !idlest.live) continue;
        entry.slot = idlest;
        idlest.calls.add(callId);
        idlest.send({ type: 'attach', callId, inputRing: entry.call.inputRing, inputSampleRate: entry.call.inputSampleRate, turnBoundary: entry.call.turnBoundary, snapshot: snapshot ?? undefined });
        idlest.doorbell.ring();
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

  stats(): { workers: Array<{ id: number; live: boolean; calls: number; restarts: number }> } {
    return { workers: this.#slots.map((s) => ({ id: s.id, live: s.live, calls: s.calls.size, restarts: s.restarts })) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) {
      slot.send({ type: 'stop' });
      slot.doorbell.ring();
    }
    for (const pending of this.#pendingDetach.values()) pending.resolve(null);
    this.#pendingDetach.clear();
    await this.#piscina.destroy();
    for (const slot of this.#slots) slot.port?.close();
  }
}
