/**
 * When to clear a stream's Silero state, as Pipecat 1.14's `SileroVADAnalyzer._maybe_reset_model` does.
 * Non-speech (music, noise, long silence) drifts the model's recurrent state so that it under-reports the
 * speech that follows; Pipecat clears the state once `intervalMs` of audio has passed since the last
 * clear, at the first window where the VAD is quiet and the last `lowWindows` windows all scored below
 * `lowConfidence`. The same rule here keeps the engine's probabilities, and so its stops, equal to
 * Pipecat's on the same audio. Pure logic, one instance per stream; counted in windows, not wall time.
 */
export interface SileroResetOptions {
  /** Audio between clears (Pipecat `_MODEL_RESET_INTERVAL_SECS`, 2 s). 0 turns the rule off. */
  intervalMs: number;
  /** A window counts as clearly non-speech below this (Pipecat 0.1). */
  lowConfidence: number;
  /** Consecutive clearly non-speech windows needed (Pipecat 5). */
  lowWindows: number;
  windowSamples: number;
  sampleRate: number;
}

export const PIPECAT_SILERO_RESET: Readonly<SileroResetOptions> = { intervalMs: 2000, lowConfidence: 0.1, lowWindows: 5, windowSamples: 512, sampleRate: 16_000 };

/** Counters that move with a call to another worker. */
export interface SileroResetState {
  windowsSinceReset: number;
  lowWindowsInARow: number;
}

export class SileroReset {
  readonly #options: SileroResetOptions;
  #windowsSinceReset = 0;
  #lowWindowsInARow = 0;

  constructor(options: Partial<SileroResetOptions> = {}) {
    this.#options = { ...PIPECAT_SILERO_RESET, ...options };
  }

  /**
   * The stream's next window scored `probability`; `quiet` is whether the VAD was quiet before this
   * window. True when the model state should be cleared before the next window.
   */
  afterWindow(probability: number, quiet: boolean): boolean {
    const o = this.#options;
    this.#windowsSinceReset++;
    this.#lowWindowsInARow = probability < o.lowConfidence ? this.#lowWindowsInARow + 1 : 0;
    if (o.intervalMs <= 0) return false;
    const due = this.#windowsSinceReset * o.windowSamples * 1000 >= o.intervalMs * o.sampleRate;
    if (!due || !quiet || this.#lowWindowsInARow < o.lowWindows) return false;
    this.#windowsSinceReset = 0;
    return true;
  }

  /** The state was cleared for another reason (digital silence): the interval starts again. */
  restart(): void {
    this.#windowsSinceReset = 0;
  }

  exportState(): SileroResetState {
    return { windowsSinceReset: this.#windowsSinceReset, lowWindowsInARow: this.#lowWindowsInARow };
  }

  importState(state: SileroResetState): void {
    this.#windowsSinceReset = state.windowsSinceReset;
    this.#lowWindowsInARow = state.lowWindowsInARow;
  }
}
