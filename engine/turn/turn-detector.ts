/**
 * Per-call end-of-turn state machine. It combines VAD start/stop events with Smart Turn v3 probabilities:
 * a VAD stop asks the model whether the turn is complete; a "no" keeps the turn open until the caller
 * resumes or the silence fallback (default 3 s of audio) closes it. Pure logic: events in, events out,
 * time measured in 16 kHz sample offsets of the call's audio, so tests are deterministic.
 */

export interface TurnDetectorSettings {
  /** Smart Turn probability above which the turn is complete. */
  completeThreshold: number;
  /** Silence after a VAD stop that completes the turn whatever the model said. */
  silenceFallbackMs: number;
  sampleRate: number;
}

export const DEFAULT_TURN_SETTINGS: TurnDetectorSettings = {
  completeThreshold: 0.5,
  silenceFallbackMs: 3000,
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

  constructor(settings: Partial<TurnDetectorSettings> = {}) {
    this.settings = { ...DEFAULT_TURN_SETTINGS, ...settings };
  }

  get state(): State {
    return this.#state;
  }

  get turnId(): number {
    return this.#turnId;
  }

  onSpeechStart(offsetSamples: number): TurnStep {
    if (this.#state === 'speaking') return { events: [] };
    const resumed = this.#state === 'paused';
    if (!resumed) this.#turnId++;
    this.#state = 'speaking';
    this.#pendingRequestId = 0;
    return { events: [{ type: 'user_started_speaking', turnId: this.#turnId, offsetSamples, resumed }] };
  }

  onSpeechEnd(offsetSamples: number): TurnStep {
    if (this.#state !== 'speaking') return { events: [] };
    this.#state = 'paused';
    this.#speechEndSamples = offsetSamples;
    this.#lastProbability = null;
    const request: SmartTurnRequest = { requestId: this.#nextRequestId++, turnId: this.#turnId, offsetSamples };
    this.#pendingRequestId = request.requestId;
    return { events: [{ type: 'user_paused', turnId: this.#turnId, offsetSamples }], request };
  }

  /** A model answer; stale answers (the caller resumed meanwhile) are ignored. */
  onSmartTurnResult(requestId: number, probability: number, atSamples: number): TurnStep {
    if (this.#state !== 'paused' || requestId !== this.#pendingRequestId) return { events: [] };
    this.#pendingRequestId = 0;
    this.#lastProbability = probability;
    const complete = probability > this.settings.completeThreshold;
    const events: TurnEvent[] = [{ type: 'smart_turn_result', turnId: this.#turnId, requestId, probability, complete }];
    if (complete) events.push(this.#complete('model', atSamples));
    return { events };
  }

  /** The model could not answer: leave the decision to the silence fallback. */
  onSmartTurnFailed(requestId: number): TurnStep {
    if (requestId === this.#pendingRequestId) this.#pendingRequestId = 0;
    return { events: [] };
  }

  /** The call's audio has been processed up to `offsetSamples`. */
  onAudioProgress(offsetSamples: number): TurnStep {
    if (this.#state !== 'paused') return { events: [] };
    const silenceSamples = offsetSamples - this.#speechEndSamples;
    if (silenceSamples * 1000 < this.settings.silenceFallbackMs * this.settings.sampleRate) return { events: [] };
    return { events: [this.#complete('silence', offsetSamples)] };
  }

  #complete(rule: TurnRule, atSamples: number): TurnEvent {
    this.#state = 'idle';
    this.#pendingRequestId = 0;
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
