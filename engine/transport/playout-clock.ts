/**
 * Real-time pacing for outgoing audio, with one timer for the whole process.
 *
 * rtc-node's AudioSource with a queue paces its caller, but libwebrtc then encodes injected silence
 * whenever nothing is captured: measured 1.5 % of a core per idle published track, so an engine with 50
 * quiet bots spent three quarters of a core encoding silence. Without a queue a frame is sent the moment
 * it is captured and nothing is encoded in between (the far end's jitter buffer plays silence, as with
 * DTX), so the sender must pace itself. Each output asks the clock to call it while it has audio to
 * send and sends what is due by the wall clock ({@link FramePacer}); idle outputs cost nothing.
 */

export interface PacedOutput {
  /** Sends what is due at `nowMs` (performance.now()); false when it has nothing more to send for now. */
  pace(nowMs: number): boolean;
}

/** What an output needs from a clock (tests drive outputs by hand). */
export interface PlayoutScheduler {
  start(output: PacedOutput): void;
  stop(output: PacedOutput): void;
}

export class PlayoutClock implements PlayoutScheduler {
  readonly tickMs: number;
  #outputs = new Set<PacedOutput>();
  #timer: NodeJS.Timeout | null = null;

  constructor(tickMs = 20) {
    this.tickMs = tickMs;
  }

  /** Paces `output` now and on every tick until it reports it has nothing to send. */
  start(output: PacedOutput): void {
    if (this.#outputs.has(output)) return;
    if (!this.#paceOne(output, performance.now())) return;
    this.#outputs.add(output);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.tickMs);
      this.#timer.unref();
    }
  }

  stop(output: PacedOutput): void {
    this.#outputs.delete(output);
    this.#stopIfIdle();
  }

  #tick(): void {
    const nowMs = performance.now();
    for (const output of this.#outputs) if (!this.#paceOne(output, nowMs)) this.#outputs.delete(output);
    this.#stopIfIdle();
  }

  /** A throwing output is dropped; it never stops the others. */
  #paceOne(output: PacedOutput, nowMs: number): boolean {
    try {
      return output.pace(nowMs);
    } catch {
      return false;
    }
  }

  #stopIfIdle(): void {
    if (this.#outputs.size > 0 || this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** The process's clock: every call's bot and every simulated caller share its timer. */
export const playoutClock = new PlayoutClock();

/**
 * How many fixed-size frames are due: a run of frames starts at the first `due` call after `restart`,
 * and frame n is due at start + n·frameMs − leadMs. Sending `leadMs` ahead keeps the far end's jitter
 * buffer fed between ticks. After a stall longer than `maxLateMs` (a blocked event loop) the lost time
 * is skipped rather than sent in a burst.
 */
export class FramePacer {
  readonly frameMs: number;
  readonly leadMs: number;
  readonly maxLateMs: number;
  #startMs = Number.NaN;
  #sentFrames = 0;
  /** Where the last run's frames end, for a run that continues it (see `restart`). */
  #continueAtMs = Number.NaN;

  constructor(opts: { frameMs: number; leadMs: number; maxLateMs: number }) {
    this.frameMs = opts.frameMs;
    this.leadMs = opts.leadMs;
    this.maxLateMs = opts.maxLateMs;
  }

  due(nowMs: number): number {
    if (Number.isNaN(this.#startMs)) {
      this.#startMs = Number.isNaN(this.#continueAtMs) ? nowMs : Math.max(nowMs, this.#continueAtMs);
      this.#continueAtMs = Number.NaN;
      this.#sentFrames = 0;
    }
    const lateMs = nowMs - (this.#startMs + this.#sentFrames * this.frameMs);
    if (lateMs > this.maxLateMs) this.#startMs += lateMs - this.maxLateMs;
    return Math.max(0, Math.floor((nowMs - this.#startMs + this.leadMs) / this.frameMs) - this.#sentFrames);
  }

  sent(frames: number): void {
    this.#sentFrames += frames;
  }

  /**
   * The next frame starts a new run. After an underrun or between utterances the run continues where
   * the frames already sent end, never earlier: audio that arrives in small pieces faster than real time
   * (a synthesiser streaming 20 ms chunks) still goes out at real time. `cut: true` (a barge-in, a pause:
   * what was scheduled is abandoned) starts the run now.
   */
  restart(options: { cut: boolean } = { cut: false }): void {
    if (options.cut) this.#continueAtMs = Number.NaN;
    else if (!Number.isNaN(this.#startMs)) this.#continueAtMs = this.#startMs + this.#sentFrames * this.frameMs;
    this.#startMs = Number.NaN;
  }
}
