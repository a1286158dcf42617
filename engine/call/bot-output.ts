/**
 * The bot's voice on its way out: synthesised audio is resampled to the sink's rate (48 kHz), written to
 * the call's output PcmRing with backpressure, and sent in the sink's 10 ms frames at real-time pace (the
 * process-wide playout clock; nothing is queued downstream). It can pause (keeping what is buffered),
 * resume, or drop everything at once for a barge-in, and it knows how much of each utterance was sent,
 * so only that part enters the conversation history.
 */
import { PcmRing } from '../ring/pcm-ring.ts';
import { Resampler } from '../stages/resampler.ts';
import type { AudioSink } from '../transport/audio-sink.ts';
import { FramePacer, playoutClock, type PacedOutput, type PlayoutScheduler } from '../transport/playout-clock.ts';

export interface BotOutputHooks {
  /** The first frame of an utterance went to the sink. */
  onFirstAudio(utteranceId: number): void;
  /** Every sample of an ended utterance has been played. */
  onPlayedOut(utteranceId: number): void;
  /** A copy of each frame sent (for recording). */
  onFrame?(pcm: Int16Array): void;
}

interface Utterance {
  id: number;
  /** Output-ring offsets (sink rate) where the utterance starts, and where it ends once known. */
  startSample: number;
  endSample: number | null;
  firstAudioSent: boolean;
}

/** Sent ahead of real time so that the far end's jitter buffer never runs dry between clock ticks. */
const LEAD_MS = 40;
/** After a longer stall of the event loop the lost time is skipped, not sent in a burst. */
const MAX_LATE_MS = 100;
/**
 * Frames of digital silence sent when the bot stops mid-word (barge-in, pause). Without them the far
 * end's jitter buffer sees its stream end abruptly and conceals the loss by repeating the cut syllable,
 * fading, for 100 ms and more (measured at an rtc-node caller); with them it plays silence.
 */
const STOP_SILENCE_FRAMES = 3;

export class BotOutput implements PacedOutput {
  readonly sink: AudioSink;
  readonly frameSamples: number;
  #ring: PcmRing;
  #hooks: BotOutputHooks;
  #clock: PlayoutScheduler;
  #pacer: FramePacer;
  #resamplers = new Map<number, Resampler>();
  #utterances: Utterance[] = [];
  #current: Utterance | null = null;
  #paused = false;
  #closed = false;

  constructor(sink: AudioSink, hooks: BotOutputHooks, opts: { ringMs?: number; clock?: PlayoutScheduler } = {}) {
    this.sink = sink;
    this.#hooks = hooks;
    this.#clock = opts.clock ?? playoutClock;
    this.frameSamples = sink.frameSamples;
    this.#pacer = new FramePacer({ frameMs: (1000 * sink.frameSamples) / sink.sampleRate, leadMs: LEAD_MS, maxLateMs: MAX_LATE_MS });
    this.#ring = PcmRing.create(Math.ceil((sink.sampleRate * (opts.ringMs ?? 2000)) / 1000));
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
      this.#startPacing();
    }
    return true;
  }

  /** No more audio for the current utterance. */
  endUtterance(): void {
    if (!this.#current) return;
    this.#current.endSample = this.#ring.totalWrittenSamples();
    this.#current = null;
    this.#startPacing();
  }

  /** Samples of utterance `id` sent so far, at the sink's rate. */
  playedSamples(id: number): number {
    const utterance = this.#utterances.find((u) => u.id === id);
    if (!utterance) return 0;
    const played = Math.max(0, this.#ring.totalReadSamples() - utterance.startSample);
    return utterance.endSample === null ? played : Math.min(played, utterance.endSample - utterance.startSample);
  }

  /** Goes silent now, keeping buffered audio for `resume`. */
  pause(): void {
    if (this.#paused) return;
    if (this.#sounding()) this.#sendStopSilence();
    this.#paused = true;
    this.#pacer.restart({ cut: true });
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#startPacing();
  }

  /** Barge-in: drops every buffered sample of every utterance, at once. */
  clear(): void {
    if (this.#sounding()) this.#sendStopSilence();
    this.#current = null;
    this.#utterances = [];
    const discard = new Int16Array(4096);
    while (this.#ring.read(discard) > 0);
    this.#paused = false;
    this.#pacer.restart({ cut: true });
  }

  /** True while audio of an utterance has gone out and is not paused. */
  #sounding(): boolean {
    return !this.#closed && !this.#paused && this.#utterances.some((u) => u.firstAudioSent);
  }

  #sendStopSilence(): void {
    const silence = new Int16Array(this.frameSamples);
    for (let i = 0; i < STOP_SILENCE_FRAMES; i++) this.sink.sendFrame(silence);
  }

  #resampler(sampleRate: number): Resampler {
    let resampler = this.#resamplers.get(sampleRate);
    if (!resampler) {
      resampler = Resampler.create({ inputSampleRate: sampleRate, outputSampleRate: this.sink.sampleRate });
      this.#resamplers.set(sampleRate, resampler);
    }
    return resampler;
  }

  #startPacing(): void {
    if (!this.#closed && !this.#paused && this.#utterances.length > 0) this.#clock.start(this);
  }

  /** Called by the playout clock: sends the frames due now; false once there is nothing to send. */
  pace(nowMs: number): boolean {
    let due = this.#closed || this.#paused ? 0 : this.#pacer.due(nowMs);
    while (due > 0) {
      const head = this.#utterances[0];
      if (!head) break;
      const available = this.#ring.availableSamples();
      const tail = head.endSample === null ? Infinity : head.endSample - this.#ring.totalReadSamples();
      if (tail <= 0) {
        this.#finishHead();
        continue;
      }
      // Underrun: synthesis is behind. Wait for more rather than send a partial frame of an open utterance.
      if (available < this.frameSamples && tail > available) break;
      // Never mix two utterances in one frame: the last frame of one is padded with silence.
      const frame = new Int16Array(this.frameSamples);
      this.#ring.read(frame.subarray(0, Math.min(this.frameSamples, available, tail)));
      if (!head.firstAudioSent) {
        head.firstAudioSent = true;
        this.#hooks.onFirstAudio(head.id);
      }
      this.#hooks.onFrame?.(frame);
      this.sink.sendFrame(frame);
      this.#pacer.sent(1);
      due--;
      if (head.endSample !== null && this.#ring.totalReadSamples() >= head.endSample) this.#finishHead();
    }
    const head = this.#utterances[0];
    const ended = head !== undefined && head.endSample !== null && head.endSample <= this.#ring.totalReadSamples();
    if (ended) this.#finishHead();
    const waiting = this.#closed || this.#paused || this.#utterances.length === 0 || (due > 0 && this.#ring.availableSamples() < this.frameSamples);
    if (waiting) this.#pacer.restart();
    // Keep ticking while anything is left to send; an underrun stops the ticks until the next write.
    return !waiting;
  }

  #finishHead(): void {
    const head = this.#utterances.shift();
    if (head) this.#hooks.onPlayedOut(head.id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.stop(this);
    for (const resampler of this.#resamplers.values()) resampler.close();
    this.#ring.close();
  }
}
