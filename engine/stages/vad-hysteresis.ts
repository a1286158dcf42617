/**
 * Turns a stream's per-window speech probabilities into speech_start / speech_end events, the way
 * Pipecat's VADAnalyzer does: a run of speech must last `startMs` before it counts, and a run of
 * non-speech must last `stopMs` before speech ends, so flicker shorter than either is ignored.
 * Pure logic: one instance per stream, no clock, positions in 16 kHz samples.
 */
import { VoiceError } from '../errors.ts';
import { VAD_SAMPLE_RATE, VAD_WINDOW_SAMPLES } from './silero-vad.ts';

export interface VadHysteresisOptions {
  /** A window with probability >= this counts as speech while quiet. Pipecat default 0.7. */
  confidence: number;
  /** While speaking, a window counts as speech at >= this (lower keeps speech through soft syllables). Defaults to `confidence`. */
  exitConfidence?: number;
  /** Speech must last this long before speech_start. Pipecat default 200 ms. */
  startMs: number;
  /** Non-speech must last this long before speech_end. Pipecat default 200 ms. */
  stopMs: number;
  /** Samples per window. Default VAD_WINDOW_SAMPLES (512). */
  windowSamples?: number;
  /** Default VAD_SAMPLE_RATE (16 000). */
  sampleRate?: number;
}

export const DEFAULT_VAD_HYSTERESIS: Readonly<VadHysteresisOptions> = { confidence: 0.7, startMs: 200, stopMs: 200 };

export type VadEvent =
  /** `offsetSamples`: start of the first speech window of the run. */
  | { type: 'speech_start'; offsetSamples: number }
  /** `offsetSamples`: end of the last speech window before the silence. */
  | { type: 'speech_end'; offsetSamples: number };

type Phase = 'quiet' | 'starting' | 'speaking' | 'stopping';

/** Everything needed to resume a stream elsewhere (a call moved to another worker). */
export interface VadHysteresisState {
  phase: Phase;
  /** Consecutive windows in the current starting/stopping run. */
  runWindows: number;
  /** Stream position of the next window. */
  offsetSamples: number;
  /** Start of the speech run being confirmed (starting) or end of the last speech window (stopping). */
  markSamples: number;
}

export class VadConfigError extends VoiceError {
  constructor(message: string) {
    super('VE_VAD_CONFIG', message, { status: 400 });
    this.name = 'VadConfigError';
  }
}

export class VadHysteresis {
  readonly #enter: number;
  readonly #exit: number;
  readonly #windowSamples: number;
  /** Consecutive windows needed; rounded like Pipecat: round(200 ms / 32 ms) = 6. */
  readonly startWindows: number;
  readonly stopWindows: number;
  #phase: Phase = 'quiet';
  #runWindows = 0;
  #offsetSamples = 0;
  #markSamples = 0;

  constructor(options: Partial<VadHysteresisOptions> = {}) {
    const o = { ...DEFAULT_VAD_HYSTERESIS, ...options };
    const exit = o.exitConfidence ?? o.confidence;
    const windowSamples = o.windowSamples ?? VAD_WINDOW_SAMPLES;
    const sampleRate = o.sampleRate ?? VAD_SAMPLE_RATE;
    if (!(o.confidence >= 0 && o.confidence <= 1)) throw new VadConfigError(`confidence must be in [0, 1], got ${o.confidence}`);
    if (!(exit >= 0 && exit <= o.confidence)) {
      throw new VadConfigError(`exitConfidence must be in [0, confidence=${o.confidence}], got ${exit}`);
    }
    if (!(o.startMs >= 0) || !(o.stopMs >= 0)) throw new VadConfigError(`startMs and stopMs must be >= 0, got ${o.startMs} and ${o.stopMs}`);
    if (!Number.isInteger(windowSamples) || windowSamples <= 0 || !(sampleRate > 0)) {
      throw new VadConfigError(`windowSamples must be a positive integer and sampleRate positive, got ${windowSamples} and ${sampleRate}`);
    }
    const windowMs = (windowSamples * 1000) / sampleRate;
    this.#enter = o.confidence;
    this.#exit = exit;
    this.#windowSamples = windowSamples;
    this.startWindows = Math.max(1, Math.round(o.startMs / windowMs));
    this.stopWindows = Math.max(1, Math.round(o.stopMs / windowMs));
  }

  /** True when no speech run is being confirmed or under way (Pipecat's QUIET). */
  get quiet(): boolean {
    return this.#phase === 'quiet';
  }

  /** True from speech_start until speech_end. */
  get speaking(): boolean {
    return this.#phase === 'speaking' || this.#phase === 'stopping';
  }

  /** Stream position of the next window. */
  get offsetSamples(): number {
    return this.#offsetSamples;
  }

  /** Feeds the probability of the next window; returns the event it completes, if any. */
  push(probability: number): VadEvent | null {
    const windowStart = this.#offsetSamples;
    const windowEnd = windowStart + this.#windowSamples;
    this.#offsetSamples = windowEnd;
    const isSpeech = probability >= (this.speaking ? this.#exit : this.#enter);

    switch (this.#phase) {
      case 'quiet':
        if (!isSpeech) return null;
        this.#phase = 'starting';
        this.#runWindows = 1;
        this.#markSamples = windowStart;
        break;
      case 'starting':
        if (!isSpeech) {
          this.#phase = 'quiet';
          this.#runWindows = 0;
          return null;
        }
        this.#runWindows++;
        break;
      case 'speaking':
        if (isSpeech) return null;
        this.#phase = 'stopping';
        this.#runWindows = 1;
        this.#markSamples = windowStart;
        break;
      case 'stopping':
        if (isSpeech) {
          this.#phase = 'speaking';
          this.#runWindows = 0;
          return null;
        }
        this.#runWindows++;
        break;
    }

    if (this.#phase === 'starting' && this.#runWindows >= this.startWindows) {
      this.#phase = 'speaking';
      this.#runWindows = 0;
      return { type: 'speech_start', offsetSamples: this.#markSamples };
    }
    if (this.#phase === 'stopping' && this.#runWindows >= this.stopWindows) {
      this.#phase = 'quiet';
      this.#runWindows = 0;
      return { type: 'speech_end', offsetSamples: this.#markSamples };
    }
    return null;
  }

  /** Feeds several windows; returns the events in order. */
  pushAll(probabilities: Iterable<number>): VadEvent[] {
    const events: VadEvent[] = [];
    for (const p of probabilities) {
      const event = this.push(p);
      if (event !== null) events.push(event);
    }
    return events;
  }

  /**
   * The stream ended (call hung up, track closed): closes an open speech run at the end of its last
   * speech window. Returns null when not speaking. Leaves the instance quiet at the same position.
   */
  end(): VadEvent | null {
    const wasSpeaking = this.speaking;
    const endSamples = this.#phase === 'stopping' ? this.#markSamples : this.#offsetSamples;
    this.#phase = 'quiet';
    this.#runWindows = 0;
    return wasSpeaking ? { type: 'speech_end', offsetSamples: endSamples } : null;
  }

  /** Back to quiet at `offsetSamples` (default 0), e.g. after the VAD stream was reset. */
  reset(offsetSamples = 0): void {
    this.#phase = 'quiet';
    this.#runWindows = 0;
    this.#offsetSamples = offsetSamples;
    this.#markSamples = offsetSamples;
  }

  exportState(): VadHysteresisState {
    return { phase: this.#phase, runWindows: this.#runWindows, offsetSamples: this.#offsetSamples, markSamples: this.#markSamples };
  }

  importState(state: VadHysteresisState): void {
    this.#phase = state.phase;
    this.#runWindows = state.runWindows;
    this.#offsetSamples = state.offsetSamples;
    this.#markSamples = state.markSamples;
  }
}
