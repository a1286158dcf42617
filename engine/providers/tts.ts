/** A piece of synthesised speech: 16-bit mono PCM. */
export interface TtsAudio {
  pcm: Int16Array;
  sampleRate: number;
}

/** A streaming text-to-speech provider. Implementations: `ElevenLabsTts`. */
export interface TextToSpeech {
  /** Human-readable provider/voice name for logs and metrics. */
  readonly label: string;
  /** Sample rate of every `TtsAudio` this provider yields. */
  readonly sampleRate: number;
  /**
   * Synthesise `text`, yielding audio as soon as it arrives. Errors are thrown from the iterator:
   * VE_TTS_FAILED (retryable for 429/5xx/network faults), VE_PROVIDER_ABORTED when `signal` aborts.
   */
  synthesize(text: string, opts: { signal: AbortSignal }): AsyncIterable<TtsAudio>;
}
