/**
 * Per-call end-of-turn state machine. It combines VAD start/stop events with Smart Turn v3 probabilities:
 * a VAD stop asks the model whether the turn is complete; a "no" keeps the turn open until the caller
 * resumes or the silence fallback (default 3 s of audio) closes it.
 *
 * A model answer must come on time: when the request misses its deadline (`onSmartTurnDeadline`, told
 * by the media engine, which keeps the clock), the model is out of that pause and a cheap fallback
 * decides: the recogniser's own end-of-speech signal about the caller's latest words
 * (`onRecognizerEndOfSpeech`: Deepgram's `speech_final` / `UtteranceEnd`), at once if it has come or as
 * soon as it comes, else the silence rule. A late answer is ignored.
 *
 * Pure logic: events in, events out, time measured in 16 kHz sample offsets of the call's audio, so
 * tests are deterministic.
 */

export interface TurnDetectorSettings {
  /** Smart Turn probability above which the turn is complete. */
  completeThreshold: number;
  /** Silence after a VAD stop that completes the turn whatever the model said. */
  silenceFallbackMs: number;
  /**
   * A stop that ends resumed speech shorter than this (VAD start to stop) after the model said
   * "incomplete" is not scored again: the "incomplete" stands. 0 (the default) scores every stop.
   * bench/turn-runs.ts measures what it saves and which decisions it would change.
   */
  skipResumedSpeechUnderMs: number;
  sampleRate: number;
}

export const DEFAULT_TURN_SETTINGS: TurnDetectorSettings = {
  completeThreshold: 0.5,
  silenceFallbackMs: 3000,
  skipResumedSpeechUnderMs: 0,
  sampleRate: 16000,
};

import type { TurnRule } from '../events.ts';

export type { TurnRule };

export type TurnEvent =
  | { type: 'user_started_speaking'; turnId: number; offsetSamples: number; resumed: boolean }
  | { type: 'user_paused'; turnId: number; offsetSamples: number }
  | { type: 'smart_turn_result'; turnId: number; requestId: number; probability: number; complete: boolean }
  | {
      type: 'user_turn_complete';
      turnId: number;
      /** Where the caller's speech ended (the VAD stop). */
      speechEndSamples: number;
      /** Audio position at which the decision was taken. */
      decidedAtSamples: number;
      probability: number | null;
      rule: TurnRule;
    };

/** Ask the Smart Turn model about the audio up to `offsetSamples`. */
export interface SmartTurnRequest {
  requestId: number;
  turnId: number;
  offsetSamples: number;
}

export interface TurnStep {
  events: TurnEvent[];
  request?: SmartTurnRequest;
}

type State = 'idle' | 'speaking' | 'paused';

export class TurnDetector {
  readonly settings: TurnDetectorSettings;
  #state: State = 'idle';
  #turnId = 0;
  #nextRequestId = 1;
  #pendingRequestId = 0;
  #speechEndSamples = 0;
  #lastProbability: number | null = null;
  /** Where the latest stretch of speech (the turn's first, or a resumption) began. */
  #speechStartSamples = 0;
  /** Where the words end that the recogniser's latest end-of-speech signal was about; -1 before any. */
  #recognizerEndSamples = -1;
  /** The current pause's request missed its deadline: a fallback decides this pause. */
  #deadlineMissed = false;
  /** The model's latest answer in this turn was "incomplete" (see skipResumedSpeechUnderMs). */
  #answeredIncomplete = false;

  constructor(settings: Partial<TurnDetectorSettings> = {}) {
    this.settings = { ...DEFAULT_TURN_SETTINGS, ...settings };
  }

  get state(): State {
    return this.#state;
  }

  get turnId(): number {
    return this.#turnId;
  }

  /** A model answer is awaited for the current pause. */
  get awaitingModel(): boolean {
    return this.#pendingRequestId !== 0;
  }

  onSpeechStart(offsetSamples: number): TurnStep {
    if (this.#state === 'speaking') return { events: [] };
    const resumed = this.#state === 'paused';
    if (!resumed) this.#turnId++;
    this.#state = 'speaking';
    this.#pendingRequestId = 0;
    this.#speechStartSamples = offsetSamples;
    this.#deadlineMissed = false;
    return { events: [{ type: 'user_started_speaking', turnId: this.#turnId, offsetSamples, resumed }] };
  }

  onSpeechEnd(offsetSamples: number): TurnStep {
    if (this.#state !== 'speaking') return { events: [] };
    this.#state = 'paused';
    const resumedSamples = offsetSamples - this.#speechStartSamples;
    this.#speechEndSamples = offsetSamples;
    this.#deadlineMissed = false;
    const paused: TurnEvent = { type: 'user_paused', turnId: this.#turnId, offsetSamples };
    if (this.#answeredIncomplete && resumedSamples * 1000 < this.settings.skipResumedSpeechUnderMs * this.settings.sampleRate) {
      // Too little new speech to change the model's mind: its "incomplete" (and probability) stand.
      return { events: [paused] };
    }
    this.#lastProbability = null;
    const request: SmartTurnRequest = { requestId: this.#nextRequestId++, turnId: this.#turnId, offsetSamples };
    this.#pendingRequestId = request.requestId;
    return { events: [paused], request };
  }

  /** A model answer; stale answers (the caller resumed meanwhile) are ignored. */
  onSmartTurnResult(requestId: number, probability: number, atSamples: number): TurnStep {
    if (this.#state !== 'paused' || requestId !== this.#pendingRequestId) return { events: [] };
    this.#pendingRequestId = 0;
    this.#lastProbability = probability;
    const complete = probability > this.settings.completeThreshold;
    this.#answeredIncomplete = !complete;
    const events: TurnEvent[] = [{ type: 'smart_turn_result', turnId: this.#turnId, requestId, probability, complete }];
    if (complete) events.push(this.#complete('model', atSamples));
    return { events };
  }

  /** The model could not answer: leave the decision to the silence fallback. */
  onSmartTurnFailed(requestId: number): TurnStep {
    if (requestId === this.#pendingRequestId) {
      this.#pendingRequestId = 0;
      this.#answeredIncomplete = false;
    }
    return { events: [] };
  }

  /**
   * The request `requestId` missed its deadline (queued too long, or still running): its answer will be
   * ignored, and the recogniser's end-of-speech signal, else the silence rule, decides this pause.
   */
  onSmartTurnDeadline(requestId: number, atSamples: number): TurnStep {
    if (this.#state !== 'paused' || requestId !== this.#pendingRequestId) return { events: [] };
    this.#pendingRequestId = 0;
    this.#deadlineMissed = true;
    this.#answeredIncomplete = false;
    if (this.#recognizerHeardTheEnd()) return { events: [this.#complete('deadline_stt', atSamples)] };
    return { events: [] };
  }

  /**
   * The recogniser says the speaker stopped; `lastWordEndSamples` is where the words it was about end.
   * It decides only a pause whose model request missed its deadline, and only when those words are the
   * caller's latest (a late signal about speech before a resumption says nothing about this pause).
   */
  onRecognizerEndOfSpeech(lastWordEndSamples: number, atSamples: number): TurnStep {
    this.#recognizerEndSamples = Math.max(this.#recognizerEndSamples, lastWordEndSamples);
    if (this.#state !== 'paused' || !this.#deadlineMissed || !this.#recognizerHeardTheEnd()) return { events: [] };
    return { events: [this.#complete('deadline_stt', atSamples)] };
  }

  /** The call's audio has been processed up to `offsetSamples`. */
  onAudioProgress(offsetSamples: number): TurnStep {
    if (this.#state !== 'paused') return { events: [] };
    const silenceSamples = offsetSamples - this.#speechEndSamples;
    if (silenceSamples * 1000 < this.settings.silenceFallbackMs * this.settings.sampleRate) return { events: [] };
    return { events: [this.#complete(this.#deadlineMissed ? 'deadline_silence' : 'silence', offsetSamples)] };
  }

  #recognizerHeardTheEnd(): boolean {
    return this.#recognizerEndSamples > this.#speechStartSamples;
  }

  #complete(rule: TurnRule, atSamples: number): TurnEvent {
    this.#state = 'idle';
    this.#pendingRequestId = 0;
    this.#deadlineMissed = false;
    this.#answeredIncomplete = false;
    return {
      type: 'user_turn_complete',
      turnId: this.#turnId,
      speechEndSamples: this.#speechEndSamples,
      decidedAtSamples: atSamples,
      probability: this.#lastProbability,
      rule,
    };
  }
}
