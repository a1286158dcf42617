/**
 * One call's media state inside a media worker: its input ring, resampler to 16 kHz, the partial VAD
 * window, the VAD hysteresis, the audio history that Smart Turn reads and the turn window that says
 * which part of it belongs to the current turn.
 */
import { PcmRing } from '../ring/pcm-ring.ts';
import { Resampler } from '../stages/resampler.ts';
import { AudioHistory } from '../stages/audio-history.ts';
import { VadHysteresis, type VadHysteresisOptions } from '../stages/vad-hysteresis.ts';
import { VAD_WINDOW_SAMPLES, VAD_SAMPLE_RATE } from '../stages/silero-vad.ts';
import { TurnWindow } from '../stages/turn-window.ts';
import { SileroReset } from '../stages/silero-reset.ts';
import { VadVolume } from '../stages/vad-volume.ts';
import { TurnBoundary } from './turn-boundary.ts';
import type { CallSnapshot, TurnWindowSettings } from './protocol.ts';

const READ_CHUNK_SAMPLES = 4096;

export class CallMedia {
  readonly callId: string;
  /** The pool's number for this call in the worker's activity word. */
  readonly tag: number;
  /** Fault injection: processing this call's audio throws. */
  crashOnAudio = false;
  readonly ring: PcmRing;
  readonly history: AudioHistory;
  readonly hysteresis: VadHysteresis;
  readonly turnWindow: TurnWindow;
  readonly sileroReset: SileroReset;
  readonly vadVolume: VadVolume;
  /** Where the main thread's last completed turn ended (read at every VAD event). */
  readonly turnBoundary: TurnBoundary;
  /** Complete 512-sample windows waiting for the next batched VAD run, oldest first. */
  readonly windows: Array<{ samples: Float32Array; inputSamples: number }> = [];
  #resampler: Resampler | null;
  #pending = new Float32Array(VAD_WINDOW_SAMPLES);
  #pendingLength = 0;
  #readBuffer = new Int16Array(READ_CHUNK_SAMPLES);
  /** 16 kHz offset of the end of the last window handed to the VAD. */
  windowEndSamples: number;

  constructor(opts: {
    callId: string;
    tag: number;
    inputRing: SharedArrayBuffer;
    inputSampleRate: number;
    historyMs: number;
    vad: VadHysteresisOptions;
    turnWindow: TurnWindowSettings;
    turnBoundary: SharedArrayBuffer;
    modelResetIntervalMs: number;
    minVolume: number;
    snapshot?: CallSnapshot;
    startOffsetSamples?: number;
  }) {
    this.callId = opts.callId;
    this.tag = opts.tag;
    this.ring = PcmRing.attach(opts.inputRing);
    this.#resampler =
      opts.inputSampleRate === VAD_SAMPLE_RATE ? null : Resampler.create({ inputSampleRate: opts.inputSampleRate, outputSampleRate: VAD_SAMPLE_RATE });
    // The history runs ahead of the VAD by what the ring held when it was drained: keep that much more
    // than the longest turn window, so a window never loses its start to audio not yet scored.
    const aheadSamples = Math.ceil((this.ring.capacitySamples * VAD_SAMPLE_RATE) / opts.inputSampleRate) + VAD_WINDOW_SAMPLES;
    const historySamples = Math.round((Math.max(opts.historyMs, opts.turnWindow.maxDurationMs) * VAD_SAMPLE_RATE) / 1000) + aheadSamples;
    const snapshot = opts.snapshot;
    const startOffset = opts.startOffsetSamples ?? 0;
    this.history = snapshot
      ? AudioHistory.restore(historySamples, snapshot.history)
      : AudioHistory.restore(historySamples, { latest: new Float32Array(0), totalSamples: startOffset });
    this.hysteresis = new VadHysteresis(opts.vad);
    this.turnWindow = new TurnWindow({ ...opts.turnWindow, vadStartMs: opts.vad.startMs, sampleRate: VAD_SAMPLE_RATE });
    this.turnBoundary = TurnBoundary.attach(opts.turnBoundary);
    this.sileroReset = new SileroReset({ intervalMs: opts.modelResetIntervalMs, windowSamples: VAD_WINDOW_SAMPLES, sampleRate: VAD_SAMPLE_RATE });
    this.vadVolume = new VadVolume({ minVolume: opts.minVolume, sampleRate: VAD_SAMPLE_RATE });
    if (!snapshot) this.hysteresis.reset(startOffset);
    if (snapshot) {
      this.hysteresis.importState(snapshot.hysteresis);
      this.turnWindow.importState(snapshot.turnWindow);
      this.sileroReset.importState(snapshot.sileroReset);
      this.vadVolume.importState(snapshot.vadVolume);
      this.#pending.set(snapshot.pending);
      this.#pendingLength = snapshot.pending.length;
    }
    this.windowEndSamples = this.history.totalSamples - this.#pendingLength;
  }

  /** Moves everything the ring holds into 16 kHz windows; returns how many samples were read. */
  drain(): number {
    let total = 0;
    for (;;) {
      const read = this.ring.read(this.#readBuffer);
      if (read === 0) return total;
      total += read;
      const input = this.#readBuffer.subarray(0, read);
      const pcm16k = this.#resampler ? this.#resampler.process(input) : input;
      this.#append(pcm16k);
    }
  }

  #append(pcm: Int16Array): void {
    const floats = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i] / 32768;
    this.history.append(floats);
    let offset = 0;
    while (offset < floats.length) {
      const take = Math.min(VAD_WINDOW_SAMPLES - this.#pendingLength, floats.length - offset);
      this.#pending.set(floats.subarray(offset, offset + take), this.#pendingLength);
      this.#pendingLength += take;
      offset += take;
      if (this.#pendingLength === VAD_WINDOW_SAMPLES) {
        this.windows.push({ samples: this.#pending, inputSamples: this.ring.totalReadSamples() });
        this.#pending = new Float32Array(VAD_WINDOW_SAMPLES);
        this.#pendingLength = 0;
      }
    }
  }

  snapshot(vad: CallSnapshot['vad']): CallSnapshot {
    // The worker applies moves between steps, when every complete window has been through the VAD.
    return {
      vad,
      history: this.history.snapshot(),
      pending: this.#pending.slice(0, this.#pendingLength),
      hysteresis: this.hysteresis.exportState(),
      turnWindow: this.turnWindow.exportState(),
      sileroReset: this.sileroReset.exportState(),
      vadVolume: this.vadVolume.exportState(),
    };
  }

  close(): void {
    this.#resampler?.close();
    this.#resampler = null;
  }
}
