/**
 * The media worker: one long-running Piscina task per thread. It owns the per-call media state of the
 * calls assigned to it, wakes on its doorbell when the main thread has written audio, and runs the VAD
 * for all of its calls as one batched `session.run` per step. On a VAD stop it extracts the Smart Turn
 * features of the current turn's audio (the call's `TurnWindow` over its history) and sends them with the
 * event; the model itself runs in the turn pool.
 */
import type { MessagePort } from 'node:worker_threads';
import { Doorbell } from '../ring/doorbell.ts';
import { createModelSession } from '../inference/backend.ts';
import { SileroVad, VAD_SAMPLE_RATE, VAD_WINDOW_SAMPLES } from '../stages/silero-vad.ts';
import { loadResamplerModule } from '../stages/resampler.ts';
import { loadFeatureExtractor, type SmartTurnFeatureExtractor } from '../stages/smart-turn-features.ts';
import { gateWindows, isDigitalSilence, kWeightedEnergies, type KWeightedEnergies } from '../stages/vad-volume.ts';
import { CallMedia } from './call-media.ts';
import { WorkerActivity } from './worker-activity.ts';
import type { FromWorker, MediaWorkerSettings, ToWorker, VadEventMessage, VadWindowResult } from './protocol.ts';

export interface ServeTask {
  port: MessagePort;
  doorbell: SharedArrayBuffer;
  /** See worker-activity.ts: which call's audio this worker is processing. */
  activity: SharedArrayBuffer;
  settings: MediaWorkerSettings;
}

/** How long the worker sleeps when nothing rings, so control messages are never stuck for long. */
const IDLE_WAIT_MS = 50;

export default async function serve(task: ServeTask): Promise<{ workerId: number; stopped: true }> {
  const { port, settings } = task;
  const doorbell = Doorbell.attach(task.doorbell);
  const activity = WorkerActivity.attach(task.activity);
  activity.leave();
  if (settings.allowFaultInjection && settings.injectStartFailure) throw new Error(`media worker ${settings.workerId}: injected start failure`);
  const started = performance.now();
  const [session, features] = await Promise.all([
    createModelSession(settings.vadBackend, settings.vadModelPath, { threads: settings.threads }),
    loadFeatureExtractor(),
    loadResamplerModule(),
  ]);
  const vad = SileroVad.create(session);
  await warmUp(vad, settings.warmUpRuns);
  const worker = new MediaWorker(settings, vad, features, port, activity);
  port.on('message', (message: ToWorker) => worker.enqueue(message));
  post(port, { type: 'ready', workerId: settings.workerId, warmUpMs: performance.now() - started });

  // A step that throws ends the task (the pool restarts it on a fresh port); what it held is released
  // either way, so a thread Piscina reuses does not keep a dead task's session.
  try {
    while (!worker.stopped) {
      const seen = doorbell.current();
      worker.applyControl();
      if (worker.stopped) break;
      const stepStarted = performance.now();
      await worker.step();
      if (worker.hasQueuedControl()) continue;
      await doorbell.wait(seen, IDLE_WAIT_MS);
      const batchWaitMs = settings.batchWindowMs - (performance.now() - stepStarted);
      if (batchWaitMs > 0) await new Promise((resolve) => setTimeout(resolve, batchWaitMs));
    }
  } finally {
    worker.close();
    port.close();
    await session.release().catch(() => {});
  }
  return { workerId: settings.workerId, stopped: true };
}

async function warmUp(vad: SileroVad, runs: number): Promise<void> {
  const id = '__warm_up__';
  vad.addStream(id);
  const silence = new Map([[id, new Float32Array(VAD_WINDOW_SAMPLES)]]);
  for (let i = 0; i < runs; i++) await vad.run(silence);
  vad.removeStream(id);
}

function post(port: MessagePort, message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

class MediaWorker {
  readonly settings: MediaWorkerSettings;
  stopped = false;
  #vad: SileroVad;
  #features: SmartTurnFeatureExtractor;
  #port: MessagePort;
  #activity: WorkerActivity;
  #calls = new Map<string, CallMedia>();
  #control: ToWorker[] = [];
  #energies: KWeightedEnergies = kWeightedEnergies(VAD_SAMPLE_RATE);

  constructor(settings: MediaWorkerSettings, vad: SileroVad, features: SmartTurnFeatureExtractor, port: MessagePort, activity: WorkerActivity) {
    this.settings = settings;
    this.#vad = vad;
    this.#features = features;
    this.#port = port;
    this.#activity = activity;
  }

  enqueue(message: ToWorker): void {
    this.#control.push(message);
  }

  hasQueuedControl(): boolean {
    return this.#control.length > 0;
  }

  /** Control messages are applied between steps, so a moving call never has windows in flight. */
  applyControl(): void {
    for (const message of this.#control.splice(0)) {
      switch (message.type) {
        case 'attach':
          this.#attach(message);
          break;
        case 'detach':
          this.#detach(message.callId, message.requestId);
          break;
        case 'crash':
          // Thrown outside any promise, like a real bug in native or WASM glue: the thread dies.
          if (this.settings.allowFaultInjection) {
            setImmediate(() => {
              throw new Error(`media worker ${this.settings.workerId}: injected crash`);
            });
          }
          break;
        case 'stall':
          if (this.settings.allowFaultInjection) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, message.durationMs);
          break;
        case 'crash_on_audio': {
          const call = this.#calls.get(message.callId);
          if (call && this.settings.allowFaultInjection) call.crashOnAudio = true;
          break;
        }
        case 'stop':
          this.stopped = true;
          break;
      }
    }
  }

  #attach(message: Extract<ToWorker, { type: 'attach' }>): void {
    try {
      const call = new CallMedia({
        callId: message.callId,
        tag: message.tag,
        inputRing: message.inputRing,
        inputSampleRate: message.inputSampleRate,
        historyMs: this.settings.historyMs,
        vad: this.settings.vad,
        turnWindow: this.settings.turnWindow,
        turnBoundary: message.turnBoundary,
        modelResetIntervalMs: this.settings.modelResetIntervalMs,
        minVolume: this.settings.minVolume,
        snapshot: message.snapshot,
        startOffsetSamples: message.startOffsetSamples,
      });
      this.#vad.addStream(message.callId);
      if (message.snapshot) this.#vad.importStreamState(message.callId, message.snapshot.vad);
      call.crashOnAudio = message.crashOnAudio === true && this.settings.allowFaultInjection;
      this.#calls.set(message.callId, call);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'VE_CALL_ATTACH_FAILED';
      post(this.#port, { type: 'call_error', callId: message.callId, code, message: String((error as Error).message) });
    }
  }

  #detach(callId: string, requestId: number): void {
    const call = this.#calls.get(callId);
    if (!call) {
      post(this.#port, { type: 'detached', requestId, callId, snapshot: null });
      return;
    }
    const snapshot = call.snapshot(this.#vad.exportStreamState(callId));
    this.#calls.delete(callId);
    this.#vad.removeStream(callId);
    call.close();
    post(this.#port, { type: 'detached', requestId, callId, snapshot });
  }

  /** Reads every call's ring, then runs batched VAD until no call has a complete window left. */
  async step(): Promise<void> {
    for (const call of this.#calls.values()) {
      this.#activity.enter(call.tag);
      const read = call.drain();
      // Thrown in the middle of this call's audio, as a bug that its audio triggers would be.
      if (call.crashOnAudio && read > 0) throw new Error(`media worker ${this.settings.workerId}: injected crash on the audio of call ${call.callId}`);
    }
    this.#activity.leave();
    for (;;) {
      const batch = new Map<string, Float32Array>();
      const silent: string[] = [];
      const inputSamples = new Map<string, number>();
      for (const call of this.#calls.values()) {
        const window = call.windows.shift();
        if (!window) continue;
        inputSamples.set(call.callId, window.inputSamples);
        if (this.settings.skipDigitalSilence && isDigitalSilence(window.samples)) {
          // Start afresh after the silence, as Silero does at the start of a stream.
          this.#vad.resetStream(call.callId);
          call.sileroReset.restart();
          silent.push(call.callId);
        } else {
          batch.set(call.callId, window.samples);
        }
      }
      if (inputSamples.size === 0) return;
      const started = performance.now();
      const probabilities = batch.size > 0 ? await this.#vad.run(batch) : new Map<string, number>();
      const inferenceMs = performance.now() - started;
      for (const callId of silent) probabilities.set(callId, 0);
      this.#report(probabilities, inputSamples, inferenceMs, batch.size, silent.length);
    }
  }

  #report(probabilities: Map<string, number>, inputSamples: Map<string, number>, inferenceMs: number, batchSize: number, silentWindows: number): void {
    const windows: VadWindowResult[] = [];
    const events: VadEventMessage[] = [];
    const transfer: ArrayBuffer[] = [];
    const scored: Array<{ call: CallMedia; probability: number; endSamples: number }> = [];
    for (const [callId, probability] of probabilities) {
      const call = this.#calls.get(callId);
      if (!call) continue;
      call.windowEndSamples += VAD_WINDOW_SAMPLES;
      const endSamples = call.windowEndSamples;
      windows.push({ callId, endSamples, probability, inputSamples: inputSamples.get(callId) ?? 0 });
      // Takes effect from the next window, as in Pipecat (whose VAD state here is still the previous one).
      if (call.sileroReset.afterWindow(probability, call.hysteresis.quiet)) this.#vad.resetStream(callId);
      scored.push({ call, probability, endSamples });
    }
    // Pipecat's loudness gate: a confident window that is too quiet is not speech.
    const loud = gateWindows(
      scored.map(({ call, endSamples }) => ({ volume: call.vadVolume, history: call.history, endSamples })),
      this.#energies,
    );
    for (const [i, { call, probability, endSamples }] of scored.entries()) {
      const callId = call.callId;
      const event = call.hysteresis.push(loud[i] ? probability : 0);
      if (!event) continue;
      // The event is confirmed at the end of this window; the boundary says where the last completed turn ended.
      const clearedAtSamples = call.turnBoundary.clearedAtSamples();
      if (event.type === 'speech_end') {
        this.#activity.enter(call.tag);
        const started = performance.now();
        // The history can run ahead of the VAD by the windows still queued: the range ends at the stop.
        const range = call.turnWindow.onSpeechEnd(endSamples, clearedAtSamples);
        const features = this.#features.extract(call.history.range(range.startSamples, range.endSamples));
        events.push({
          callId,
          type: event.type,
          offsetSamples: event.offsetSamples,
          confirmedAtSamples: endSamples,
          scoredFromSamples: range.startSamples,
          features,
          featureMs: performance.now() - started,
        });
        transfer.push(features.buffer as ArrayBuffer);
        this.#activity.leave();
      } else {
        call.turnWindow.onSpeechStart(endSamples, clearedAtSamples);
        events.push({ callId, type: event.type, offsetSamples: event.offsetSamples, confirmedAtSamples: endSamples });
      }
    }
    post(this.#port, { type: 'step', windows, events, inferenceMs, batchSize, silentWindows }, transfer);
  }

  close(): void {
    for (const call of this.#calls.values()) call.close();
    this.#calls.clear();
  }
}
