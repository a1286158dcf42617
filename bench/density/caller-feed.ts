/**
 * Real-time delivery of caller audio, the way LiveKit hands a server 20 ms frames: every caller gets one
 * frame per frame period, each caller at its own phase within the period. ONE timer drives every caller
 * (a per-call setInterval would cost a timer per call and drift apart); each tick writes every frame
 * that is due by then, so a late tick catches up instead of losing time, and the schedule is computed
 * from the start time, never from the previous tick, so it cannot drift.
 */
import { LatencyRecorder } from '../../engine/metrics/latency-recorder.ts';

/** Loops a caller's audio from a starting offset, one frame at a time. */
export class LoopingAudio {
  readonly pcm: Int16Array;
  readonly frameSamples: number;
  #offsetSamples: number;
  /** Reused: consumers copy the frame (ring write, resampler) before the next one is produced. */
  #frame: Int16Array;

  constructor(pcm: Int16Array, frameSamples: number, startOffsetSamples = 0) {
    if (pcm.length === 0) throw new RangeError('caller audio must not be empty');
    this.pcm = pcm;
    this.frameSamples = frameSamples;
    this.#offsetSamples = ((startOffsetSamples % pcm.length) + pcm.length) % pcm.length;
    this.#frame = new Int16Array(frameSamples);
  }

  get offsetSamples(): number {
    return this.#offsetSamples;
  }

  /** The next frame, wrapping around the end of the audio. */
  next(): Int16Array {
    let filled = 0;
    while (filled < this.frameSamples) {
      const take = Math.min(this.frameSamples - filled, this.pcm.length - this.#offsetSamples);
      this.#frame.set(this.pcm.subarray(this.#offsetSamples, this.#offsetSamples + take), filled);
      filled += take;
      this.#offsetSamples = (this.#offsetSamples + take) % this.pcm.length;
    }
    return this.#frame;
  }
}

/**
 * Frames of a caller with phase `phaseMs` that are due `elapsedMs` after the start: frame k is due at
 * phaseMs + k * frameMs.
 */
export function framesDue(elapsedMs: number, phaseMs: number, frameMs: number): number {
  if (elapsedMs < phaseMs) return 0;
  return Math.floor((elapsedMs - phaseMs) / frameMs) + 1;
}

export interface FeederStats {
  ticks: number;
  framesWritten: number;
  /** How late frames were written against their due time. */
  lagMs: { count: number; p50: number; p95: number; p99: number; max: number };
  /** Frames written a whole frame period or more after they were due: the feeder fell behind. */
  lateFrames: number;
}

interface Caller {
  phaseMs: number;
  written: number;
  write: () => void;
}

export interface RealTimeFeederOptions {
  /** Audio per frame. Default 20 ms. */
  frameMs?: number;
  /** Timer period; a frame waits at most this long past its due time (plus timer jitter). Default 5 ms. */
  tickMs?: number;
  /** Clock in ms; default performance.now. */
  now?: () => number;
}

export class RealTimeFeeder {
  readonly frameMs: number;
  readonly tickMs: number;
  #now: () => number;
  #callers: Caller[] = [];
  #startedAt = 0;
  #tickIndex = 0;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #ticks = 0;
  #framesWritten = 0;
  #lateFrames = 0;
  #lag = new LatencyRecorder(1 << 18);

  constructor(options: RealTimeFeederOptions = {}) {
    this.frameMs = options.frameMs ?? 20;
    this.tickMs = options.tickMs ?? 5;
    this.#now = options.now ?? (() => performance.now());
    if (!(this.frameMs > 0) || !(this.tickMs > 0)) throw new RangeError('frameMs and tickMs must be positive');
  }

  /** Adds a caller whose frames are due at `phaseMs + k * frameMs` after the feeder starts (phaseMs in [0, frameMs)). */
  add(phaseMs: number, write: () => void): void {
    if (!(phaseMs >= 0 && phaseMs < this.frameMs)) throw new RangeError(`phaseMs must be in [0, ${this.frameMs}), got ${phaseMs}`);
    // A caller added while running starts with its next due frame, not with a backlog from the start.
    const written = this.#running ? framesDue(this.#now() - this.#startedAt, phaseMs, this.frameMs) : 0;
    this.#callers.push({ phaseMs, written, write });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#startedAt = this.#now();
    this.#tickIndex = 0;
    this.#schedule();
  }

  /** Writes every frame due by now. Public so that tests can drive the feeder with a fake clock. */
  tick(): void {
    const now = this.#now();
    const elapsedMs = now - this.#startedAt;
    this.#ticks++;
    for (const caller of this.#callers) {
      const due = framesDue(elapsedMs, caller.phaseMs, this.frameMs);
      while (caller.written < due) {
        const lagMs = elapsedMs - (caller.phaseMs + caller.written * this.frameMs);
        this.#lag.record(lagMs);
        if (lagMs >= this.frameMs) this.#lateFrames++;
        caller.write();
        caller.written++;
        this.#framesWritten++;
      }
    }
  }

  #schedule(): void {
    if (!this.#running) return;
    // Grid-aligned to the start: a slow tick shortens the next wait instead of shifting every later tick.
    this.#tickIndex = Math.max(this.#tickIndex + 1, Math.floor((this.#now() - this.#startedAt) / this.tickMs) + 1);
    const waitMs = Math.max(0, this.#startedAt + this.#tickIndex * this.tickMs - this.#now());
    this.#timer = setTimeout(() => {
      this.tick();
      this.#schedule();
    }, waitMs);
  }

  stats(): FeederStats {
    return { ticks: this.#ticks, framesWritten: this.#framesWritten, lagMs: this.#lag.summary(), lateFrames: this.#lateFrames };
  }

  /** Starts the counters afresh, e.g. at the end of a warm-up phase. */
  resetStats(): void {
    this.#ticks = 0;
    this.#framesWritten = 0;
    this.#lateFrames = 0;
    this.#lag.reset();
  }

  /** Idempotent. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
