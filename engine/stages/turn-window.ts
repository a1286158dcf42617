/**
 * Which audio Smart Turn is given at a VAD stop: the current user turn's, as Pipecat's `BaseSmartTurn`
 * builds it. Pipecat buffers the audio of the turn from its first speech start less a pre-speech
 * allowance (`pre_speech_ms`, 500 ms, plus the VAD's start window, since the VAD confirms speech that
 * much after it began), up to the stop; keeps that buffer across "incomplete" decisions (the turn goes
 * on when the caller resumes); clears it when the turn completes; and gives the model the last
 * `max_duration_secs` (8 s) of it, zero-padded at the front by the feature extractor.
 *
 * Pure logic over 16 kHz stream positions, one instance per call in its media worker. The worker sees
 * the VAD; whether a turn completed is decided on the main thread (the turn detector, from the model's
 * answer or the silence rule), which publishes the position where the completed turn's audio ends (see
 * `TurnBoundary`). Every method takes the latest published position, so a completion the worker learns
 * of late still splits the turns where the main thread did.
 */
import { VoiceError } from '../errors.ts';
import type { TurnRule } from '../events.ts';

export interface TurnWindowOptions {
  /** Audio before the turn's first speech start that belongs to it (Pipecat `pre_speech_ms`). */
  preSpeechMs: number;
  /** The VAD's start window (`VAD_START_MS`): speech is confirmed this long after it began. */
  vadStartMs: number;
  /** The model sees at most the last this-many ms of the turn (Pipecat `max_duration_secs`). */
  maxDurationMs: number;
  sampleRate: number;
}

/** Pipecat's defaults (`SmartTurnParams`, `VADParams`). */
export const DEFAULT_TURN_WINDOW: Readonly<TurnWindowOptions> = { preSpeechMs: 500, vadStartMs: 200, maxDurationMs: 8000, sampleRate: 16_000 };

/** Everything needed to resume a call's turn window in another worker. */
export interface TurnWindowState {
  /** First sample of the open turn's audio; null between turns. */
  startSamples: number | null;
  /** Where the audio of the last completed turn ended (nothing before it belongs to a later turn). */
  clearedAtSamples: number;
  /** Where the VAD confirmed the latest speech run; null before any speech. */
  speechConfirmedAtSamples: number | null;
}

/** The audio to score: `[startSamples, endSamples)` of the call's 16 kHz stream. */
export interface TurnAudioRange {
  startSamples: number;
  endSamples: number;
}

/**
 * Where a completed turn's audio ends, as Pipecat clears its buffer: after scoring the audio up to the
 * VAD stop when the model completed the turn, or where the silence rule fired. Audio after that position
 * belongs to the next turn. A fallback rule (silence, deadline) decides at a later position, and the
 * silence up to it is this turn's.
 */
export function completedTurnEndSamples(rule: TurnRule, stopConfirmedAtSamples: number, decidedAtSamples: number): number {
  return rule === 'model' ? stopConfirmedAtSamples : decidedAtSamples;
}

export class TurnWindowConfigError extends VoiceError {
  constructor(message: string) {
    super('VE_TURN_WINDOW_CONFIG', message, { status: 400 });
    this.name = 'TurnWindowConfigError';
  }
}

export class TurnWindow {
  readonly #allowanceSamples: number;
  readonly #maxSamples: number;
  #startSamples: number | null = null;
  #clearedAtSamples = 0;
  #speechConfirmedAtSamples: number | null = null;

  constructor(options: Partial<TurnWindowOptions> = {}) {
    const o = { ...DEFAULT_TURN_WINDOW, ...options };
    if (!(o.preSpeechMs >= 0) || !(o.vadStartMs >= 0)) throw new TurnWindowConfigError(`preSpeechMs and vadStartMs must be >= 0, got ${o.preSpeechMs} and ${o.vadStartMs}`);
    if (!(o.maxDurationMs > 0)) throw new TurnWindowConfigError(`maxDurationMs must be > 0, got ${o.maxDurationMs}`);
    this.#allowanceSamples = Math.round(((o.preSpeechMs + o.vadStartMs) * o.sampleRate) / 1000);
    this.#maxSamples = Math.round((o.maxDurationMs * o.sampleRate) / 1000);
  }

  /** The VAD confirmed speech at `confirmedAtSamples` (the end of the window that completed its start run). */
  onSpeechStart(confirmedAtSamples: number, clearedAtSamples: number): void {
    this.#sync(clearedAtSamples);
    this.#speechConfirmedAtSamples = confirmedAtSamples;
    this.#startSamples ??= this.#turnStart(confirmedAtSamples);
  }

  /** The VAD confirmed a stop at `confirmedAtSamples`: the audio Smart Turn should score now. */
  onSpeechEnd(confirmedAtSamples: number, clearedAtSamples: number): TurnAudioRange {
    this.#sync(clearedAtSamples);
    // No open turn (state lost with a crashed worker): the speech run that just ended is the turn.
    this.#startSamples ??= this.#turnStart(this.#speechConfirmedAtSamples ?? confirmedAtSamples);
    const startSamples = Math.max(this.#startSamples, confirmedAtSamples - this.#maxSamples);
    return { startSamples: Math.min(startSamples, confirmedAtSamples), endSamples: confirmedAtSamples };
  }

  exportState(): TurnWindowState {
    return { startSamples: this.#startSamples, clearedAtSamples: this.#clearedAtSamples, speechConfirmedAtSamples: this.#speechConfirmedAtSamples };
  }

  importState(state: TurnWindowState): void {
    this.#startSamples = state.startSamples;
    this.#clearedAtSamples = state.clearedAtSamples;
    this.#speechConfirmedAtSamples = state.speechConfirmedAtSamples;
  }

  #turnStart(confirmedAtSamples: number): number {
    return Math.max(confirmedAtSamples - this.#allowanceSamples, this.#clearedAtSamples);
  }

  /** Applies a completion published since the last call: the open turn ends there. */
  #sync(clearedAtSamples: number): void {
    if (clearedAtSamples <= this.#clearedAtSamples) return;
    this.#clearedAtSamples = clearedAtSamples;
    // Speech confirmed after the completion (the answer came while the caller was already speaking
    // again) opens the next turn; otherwise there is no turn until the next speech start.
    const confirmed = this.#speechConfirmedAtSamples;
    this.#startSamples = confirmed !== null && confirmed > clearedAtSamples ? this.#turnStart(confirmed) : null;
  }
}
