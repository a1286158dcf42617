/** Where the bot's audio goes: LiveKit's AudioSource in production, a recorder in tests. */
export interface AudioSink {
  readonly sampleRate: number;
  /** Samples per frame the sink takes (10 ms for LiveKit's unqueued AudioSource). */
  readonly frameSamples: number;
  /**
   * Sends one frame now. Nothing is queued downstream, so the caller paces (see playout-clock.ts) and a
   * barge-in is silent as soon as the caller stops sending. Never throws; a failed send is dropped.
   */
  sendFrame(pcm: Int16Array): void;
}
