import type { VoiceError } from '../errors.ts';

/** One transcript hypothesis for a stretch of the caller's audio. */
export interface TranscriptResult {
  /** `interim` results may still change; a `final` result for the same audio replaces them for good. */
  kind: 'interim' | 'final';
  text: string;
  /** Start of the transcribed audio, in ms since the stream started (call-relative, survives reconnects). */
  startMs: number;
  /** End of the transcribed audio, in ms since the stream started. */
  endMs: number;
  /** 0..1, as reported by the provider. */
  confidence: number;
  /**
   * True when the provider also believes the speaker paused (endpointing) or the segment was forced
   * out by `finalize()`: the turn detector may treat it as a candidate end of turn.
   */
  speechFinal: boolean;
}

/**
 * The recogniser's own judgement that the speaker stopped: Deepgram's `speech_final` (its endpointing
 * saw enough silence after words) or `UtteranceEnd` (a gap after the last finalised word). A result
 * forced out by `finalize()` is not one: the engine asked for it.
 */
export interface SttEndOfSpeech {
  kind: 'speech_final' | 'utterance_end';
  /** Where the last word it is about ends, in ms since the stream started (call-relative). */
  lastWordEndMs: number;
}

export interface SttStreamOptions {
  /** Sample rate of the 16-bit mono PCM passed to `pushAudio`. */
  sampleRate: number;
  /** BCP-47 language tag; the provider's default when absent. */
  language?: string;
  /** Called for every interim and final result. A throwing listener is caught and ignored. */
  onResult(r: TranscriptResult): void;
  /**
   * Called when the recogniser itself says the speaker stopped (after the `final` result it concerns,
   * if any); providers without such a signal never call it. A throwing listener is caught and ignored.
   */
  onEndOfSpeech?(signal: SttEndOfSpeech): void;
  /**
   * Called once when the stream gives up (the recogniser stayed unreachable for `maxOutageMs`, or a
   * provider's attempt budget ran out); the stream is then closed.
   */
  onError(e: VoiceError): void;
  /**
   * Called once per outage when reconnecting did not work at once (code VE_STT_UNAVAILABLE): until
   * `onReconnected`, nothing is recognised. The stream keeps buffering (bounded) and retrying.
   */
  onUnavailable?(e: VoiceError): void;
  /**
   * Called when a connection works again after a drop or an outage, `downMs` after the last working
   * one was lost; the audio since the last final result was replayed (as far as the provider keeps it).
   */
  onReconnected?(downMs: number): void;
  /** How long the recogniser may stay unreachable before the stream gives up (`onError`); provider default when absent. */
  maxOutageMs?: number;
}

/** A live transcription session for one call. */
export interface SttStream {
  /** Queue 16-bit mono PCM at `sampleRate`; never blocks. Ignored after `close()`. */
  pushAudio(pcm: Int16Array): void;
  /** Ask the provider to emit a final result for the audio sent so far (e.g. when local VAD saw a stop). */
  finalize(): void;
  /** Flush outstanding results, then close. Idempotent: later calls return the same promise. */
  close(): Promise<void>;
}

/** A speech-to-text provider. Implementations: `DeepgramStt`. */
export interface SpeechToText {
  /** Human-readable provider/model name for logs and metrics. */
  readonly label: string;
  stream(opts: SttStreamOptions): SttStream;
}
