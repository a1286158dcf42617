/**
 * The main-thread handle of one call's media path: the caller's audio goes into its input ring, and its
 * VAD, turn and worker events come out of `onEvent`. A listener that throws is reported and never
 * reaches the audio path.
 */
import { PcmRing } from './ring/pcm-ring.ts';
import { TurnBoundary } from './pool/turn-boundary.ts';
import type { VadEventMessage } from './pool/protocol.ts';
import { completedTurnEndSamples } from './stages/turn-window.ts';
import { TurnDetector, type TurnEvent, type TurnStep, type TurnDetectorSettings } from './turn/turn-detector.ts';
import { ClosedError } from './errors.ts';
import type { TurnRule } from './events.ts';

export type MediaEvent =
  /** `offsetSamples`: where speech began; `confirmedAtSamples`: where the VAD confirmed it. */
  | { type: 'speech_start'; offsetSamples: number; confirmedAtSamples: number }
  /** `offsetSamples`: where speech ended; Smart Turn scores `[scoredFromSamples, confirmedAtSamples)`. */
  | { type: 'speech_end'; offsetSamples: number; confirmedAtSamples: number; scoredFromSamples?: number }
  | { type: 'vad_probability'; endSamples: number; probability: number }
  | { type: 'worker_restarted'; fromWorkerId: number; toWorkerId: number; reason: string }
  | { type: 'smart_turn_error'; code: string; message: string }
  | { type: 'input_overflow'; droppedSamples: number }
  /** The media workers no longer serve this call (its audio crashed them, or none is left): it must end. */
  | { type: 'media_failed'; code: string; message: string; reason: string }
  | TurnEvent;

export type MediaEventListener = (event: MediaEvent) => void;

export interface CallAudioHooks {
  notify(callId: string): void;
  requestSmartTurn(call: CallAudio, requestId: number, features: Float32Array, featureMs: number): void;
  recordFrameLatency(latencyMs: number): void;
  /** A user turn completed by `rule`. */
  recordTurnDecision(rule: TurnRule): void;
  onListenerError(callId: string, error: unknown): void;
  close(call: CallAudio): Promise<void>;
}

/** Write times of recent frames, to turn "window complete" reports into frame-to-decision latency. */
interface FrameMark {
  cumulativeSamples: number;
  writtenAt: number;
}

export class CallAudio {
  readonly callId: string;
  readonly inputSampleRate: number;
  readonly inputRing: PcmRing;
  readonly turn: TurnDetector;
  /** Tells the media worker where each completed turn's audio ends (see `TurnWindow`). */
  readonly turnBoundary = TurnBoundary.create();
  /** Emit every window's VAD probability (tests and the live page; off by default). */
  readonly trace: boolean;
  #hooks: CallAudioHooks;
  #listeners = new Set<MediaEventListener>();
  #marks: FrameMark[] = [];
  #reportedDropped = 0;
  #closed = false;
  /** Where the VAD confirmed the latest stop: a turn the model completes ends there, as in Pipecat. */
  #stopConfirmedAtSamples = 0;
  /** The last 16 kHz offset the VAD has processed. */
  processedSamples = 0;

  constructor(opts: { callId: string; inputSampleRate: number; ringCapacitySamples: number; turn: Partial<TurnDetectorSettings>; trace: boolean; hooks: CallAudioHooks }) {
    this.callId = opts.callId;
    this.inputSampleRate = opts.inputSampleRate;
    this.inputRing = PcmRing.create(opts.ringCapacitySamples);
    this.turn = new TurnDetector(opts.turn);
    this.trace = opts.trace;
    this.#hooks = opts.hooks;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Moves one frame of caller audio (16-bit PCM at `inputSampleRate`) into the worker's ring. */
  writeCallerAudio(pcm: Int16Array): number {
    if (this.#closed) throw new ClosedError(`call ${this.callId}`);
    const accepted = this.inputRing.write(pcm);
    this.#marks.push({ cumulativeSamples: this.inputRing.totalWrittenSamples(), writtenAt: performance.now() });
    if (this.#marks.length > 512) this.#marks.splice(0, 256);
    this.#hooks.notify(this.callId);
    const dropped = this.inputRing.droppedSamples();
    if (dropped > this.#reportedDropped) {
      this.#emit({ type: 'input_overflow', droppedSamples: dropped - this.#reportedDropped });
      this.#reportedDropped = dropped;
    }
    return accepted;
  }

  droppedSamples(): number {
    return this.inputRing.droppedSamples();
  }

  onEvent(listener: MediaEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A VAD window finished; `inputSamples` is how much input the worker had read when it completed. */
  handleWindow(endSamples: number, probability: number, inputSamples: number, now: number): void {
    this.processedSamples = endSamples;
    while (this.#marks.length > 1 && this.#marks[0].cumulativeSamples < inputSamples) this.#marks.shift();
    const mark = this.#marks[0];
    if (mark && mark.cumulativeSamples >= inputSamples) this.#hooks.recordFrameLatency(now - mark.writtenAt);
    if (this.trace) this.#emit({ type: 'vad_probability', endSamples, probability });
    this.#apply(this.turn.onAudioProgress(endSamples));
  }

  handleVadEvent(event: Omit<VadEventMessage, 'callId'>): void {
    const { offsetSamples, confirmedAtSamples } = event;
    if (event.type === 'speech_start') {
      this.#emit({ type: 'speech_start', offsetSamples, confirmedAtSamples });
      this.#apply(this.turn.onSpeechStart(offsetSamples));
      return;
    }
    this.#stopConfirmedAtSamples = confirmedAtSamples;
    this.#emit({ type: 'speech_end', offsetSamples, confirmedAtSamples, scoredFromSamples: event.scoredFromSamples });
    const step = this.turn.onSpeechEnd(offsetSamples);
    this.#apply(step);
    if (step.request && event.features) this.#hooks.requestSmartTurn(this, step.request.requestId, event.features, event.featureMs ?? 0);
  }

  handleSmartTurn(requestId: number, probability: number): void {
    this.#apply(this.turn.onSmartTurnResult(requestId, probability, this.processedSamples));
  }

  /** The request missed its deadline: the recogniser's end-of-speech signal, else the silence rule, decides. */
  handleSmartTurnDeadline(requestId: number): void {
    this.#apply(this.turn.onSmartTurnDeadline(requestId, this.processedSamples));
  }

  /**
   * The recogniser's own end-of-speech signal (Deepgram `speech_final` or `UtteranceEnd`) about words
   * that end `lastWordEndMs` into the call: it decides a pause whose Smart Turn request missed its
   * deadline. The voice call forwards it from its STT stream (`SttStreamOptions.onEndOfSpeech`).
   */
  handleRecognizerEndOfSpeech(lastWordEndMs: number): void {
    if (this.#closed) return;
    const lastWordEndSamples = Math.round((lastWordEndMs * this.turn.settings.sampleRate) / 1000);
    this.#apply(this.turn.onRecognizerEndOfSpeech(lastWordEndSamples, this.processedSamples));
  }

  handleSmartTurnFailure(requestId: number, code: string, message: string): void {
    this.#emit({ type: 'smart_turn_error', code, message });
    this.#apply(this.turn.onSmartTurnFailed(requestId));
  }

  handleWorkerRestarted(fromWorkerId: number, toWorkerId: number, reason: string): void {
    this.#emit({ type: 'worker_restarted', fromWorkerId, toWorkerId, reason });
  }

  handleMediaFailed(code: string, message: string, reason: string): void {
    this.#emit({ type: 'media_failed', code, message, reason });
  }

  #apply(step: TurnStep): void {
    for (const event of step.events) {
      if (event.type === 'user_turn_complete') {
        this.turnBoundary.publish(completedTurnEndSamples(event.rule, this.#stopConfirmedAtSamples, event.decidedAtSamples));
        this.#hooks.recordTurnDecision(event.rule);
      }
      this.#emit(event);
    }
  }

  #emit(event: MediaEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#hooks.onListenerError(this.callId, error);
      }
    }
  }

  /** Idempotent: detaches the call from its worker and releases its ring. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#hooks.close(this);
    this.inputRing.close();
    this.#listeners.clear();
  }
}
