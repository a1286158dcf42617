/** Where the bot's audio goes: LiveKit's AudioSource in production, a recorder in tests. */
export interface AudioSink {
  readonly sampleRate: number;
  /** Resolves when the frame is queued; the queue's bound paces the caller (backpressure). */
  captureFrame(pcm: Int16Array): Promise<void>;
  /** Drops what is queued and not yet sent: the bot goes silent within one frame. */
  clearQueue(): void;
  /** Audio queued and not yet sent. */
  queuedMs(): number;
}
