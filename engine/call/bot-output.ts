/**
 * The bot's voice on its way out: synthesised audio is resampled to the sink's rate (48 kHz), written to
 * the call's output PcmRing with backpressure, and paced out in 20 ms frames. It can pause (keeping what
 * is buffered), resume, or clear everything at once for a barge-in, and it knows how much of each
 * utterance was actually played, so only that part enters the conversation history.
 */
import { PcmRing } from '../ring/pcm-ring.ts';
import { Resampler } from '../stages/resampler.ts';
import type { AudioSink } from '../transport/audio-sink.ts';

export interface BotOutputHooks {
  /** The first frame of an utterance went to the sink. */
  onFirstAudio(utteranceId: number): void;
  /** Every sample of an ended utterance has been played. */
  onPlayedOut(utteranceId: number): void;
  /** A copy of each 10 ms frame sent (for recording). */
  onFrame?(pcm: Int16Array): void;
}

interface Utterance {
  id: number;
  /** Output-ring offsets (sink rate) where the utterance starts, and where it ends once known. */
  startSample: number;
  endSample: number | null;
  firstAudioSent: boolean;
}

/** 20 ms frames: one capture call per frame through rtc-node's FFI is the main-thread cost here. */
const FRAME_MS = 20;

export class BotOutput {
  readonly sink: AudioSink;
  readonly frameSamples: number;
  #ring: PcmRing;
  #hooks: BotOutputHooks;
  #resamplers = new Map<number, Resampler>();
  #utterances: Utterance[] = [];
  #current: Utterance | null = null;
  #paused = false;
  #closed = false;
  #frame: Int16Array;
  #sentSamples = 0;
  #loop: Promise<void>;
  #wake: (() => void) | null = null;

  constructor(sink: AudioSink, hooks: BotOutputHooks, opts: { ringMs?: number } = {}) {
    this.sink = sink;
    this.#hooks = hooks;
    this.frameSamples = (sink.sampleRate * FRAME_MS) / 1000;
    this.#ring = PcmRing.create(Math.ceil((sink.sampleRate * (opts.ringMs ?? 2000)) / 1000));
    this.#frame = new Int16Array(this.frameSamples);
    this.#loop = this.#playout();
  }

  /** True while any utterance still has audio to play. */
  get speaking(): boolean {
    return this.#utterances.length > 0;
  }

  get paused(): boolean {
    return this.#paused;
  }

  beginUtterance(id: number): void {
    this.endUtterance();
    const utterance: Utterance = { id, startSample: this.#ring.totalWrittenSamples(), endSample: null, firstAudioSent: false };
    this.#utterances.push(utterance);
    this.#current = utterance;
  }

  /** Writes synthesised audio of the current utterance; waits while the ring is full. */
  async write(id: number, pcm: Int16Array, sampleRate: number): Promise<boolean> {
    if (this.#current?.id !== id || this.#closed) return false;
    const converted = sampleRate === this.sink.sampleRate ? pcm : this.#resampler(sampleRate).process(pcm);
    let offset = 0;
    while (offset < converted.length) {
      if (this.#current?.id !== id || this.#closed) return false;
      const free = this.#ring.freeSamples();
      if (free === 0) {
        await this.#ring.waitForSpace(Math.min(this.frameSamples, converted.length - offset), 100);
        continue;
      }
      offset += this.#ring.write(converted.subarray(offset, offset + free));
      this.#wake?.();
    }
    return true;
  }

  /** No more audio for the current utterance. */
  endUtterance(): void {
    if (!this.#current) return;
    this.#current.endSample = this.#ring.totalWrittenSamples();
    this.#current = null;
    this.#wake?.();
  }

  /** Samples of utterance `id` played so far, at the sink's rate. */
  playedSamples(id: number): number {
    const utterance = this.#utterances.find((u) => u.id === id);
    if (!utterance) return 0;
    const queued = Math.round((this.sink.queuedMs() * this.sink.sampleRate) / 1000);
    const played = Math.max(0, this.#sentSamples - queued - utterance.startSample);
    return utterance.endSample === null ? played : Math.min(played, utterance.endSample - utterance.startSample);
  }

  /** Goes silent now, keeping buffered audio (less what the sink had queued) for `resume`. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.sink.clearQueue();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#wake?.();
  }

  /** Barge-in: drops every buffered sample of every utterance, at once. */
  clear(): void {
    this.#current = null;
    this.#utterances = [];
    this.sink.clearQueue();
    const discard = new Int16Array(4096);
    while (this.#ring.read(discard) > 0);
    this.#sentSamples = this.#ring.totalReadSamples();
    this.#paused = false;
  }

  #resampler(sampleRate: number): Resampler {
    let resampler = this.#resamplers.get(sampleRate);
    if (!resampler) {
      resampler = Resampler.create({ inputSampleRate: sampleRate, outputSampleRate: this.sink.sampleRate });
      this.#resamplers.set(sampleRate, resampler);
    }
    return resampler;
  }

  async #playout(): Promise<void> {
    while (!this.#closed) {
      const head = this.#utterances[0];
      const available = this.#ring.availableSamples();
      const headEnded = head?.endSample !== null && head?.endSample !== undefined;
      const tail = headEnded ? head.endSample! - this.#ring.totalReadSamples() : Infinity;
      if (this.#paused || !head || (available < this.frameSamples && tail > available)) {
        if (head && headEnded && tail <= 0) {
          this.#finishHead();
          continue;
        }
        // With nothing to play, sleep until written to; otherwise poll at the frame rate for more audio.
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (head) setTimeout(resolve, FRAME_MS);
        });
        this.#wake = null;
        continue;
      }
      // Never mix two utterances in one frame: the last frame of one is padded with silence.
      const take = Math.min(this.frameSamples, available, tail);
      const frame = take === this.frameSamples ? this.#frame : new Int16Array(this.frameSamples);
      this.#ring.read(frame.subarray(0, take));
      if (!head.firstAudioSent) {
        head.firstAudioSent = true;
        this.#hooks.onFirstAudio(head.id);
      }
      this.#hooks.onFrame?.(frame.slice());
      this.#sentSamples = this.#ring.totalReadSamples();
      await this.sink.captureFrame(frame.slice());
      if (headEnded && this.#ring.totalReadSamples() >= head.endSample!) this.#finishHead();
    }
  }

  #finishHead(): void {
    const head = this.#utterances.shift();
    if (head) this.#hooks.onPlayedOut(head.id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    await this.#loop.catch(() => {});
    for (const resampler of this.#resamplers.values()) resampler.close();
    this.#ring.close();
  }
}
