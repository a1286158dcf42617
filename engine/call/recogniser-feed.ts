/**
 * The caller's audio on its way to the recogniser. It gets 100 ms messages while the caller speaks
 * (within Deepgram's recommended 20-250 ms), flushed at once when they start and stop, and 400 ms
 * messages of what the VAD calls silence: one WebSocket send per 20 ms frame was a large share of the
 * main thread at density (11 % of it with 30 calls at 40 ms messages). Every sample is sent, in order;
 * only the message size changes.
 */
import { concatPcm } from '../pcm.ts';
import type { SttStream } from '../providers/stt.ts';

/** Recogniser message length while the caller speaks (VAD), and while they do not. */
const STT_BATCH_MS = 100;
const STT_IDLE_BATCH_MS = 400;

export class RecogniserFeed {
  readonly stream: SttStream;
  #sampleRate: number;
  #buffer: Int16Array[] = [];
  #bufferedSamples = 0;
  /** Between the VAD's speech_start and speech_end. */
  #callerSpeaking = false;

  constructor(stream: SttStream, sampleRate: number) {
    this.stream = stream;
    this.#sampleRate = sampleRate;
  }

  get callerSpeaking(): boolean {
    return this.#callerSpeaking;
  }

  /** One frame of the caller's audio (copied: the transport may reuse its buffer). */
  push(pcm: Int16Array): void {
    this.#buffer.push(pcm.slice());
    this.#bufferedSamples += pcm.length;
    const batchMs = this.#callerSpeaking ? STT_BATCH_MS : STT_IDLE_BATCH_MS;
    if (this.#bufferedSamples * 1000 >= batchMs * this.#sampleRate) this.flush();
  }

  /** The VAD heard the caller start or stop: what is buffered goes now, and the message size changes. */
  setCallerSpeaking(speaking: boolean): void {
    this.#callerSpeaking = speaking;
    this.flush();
  }

  flush(): void {
    if (this.#bufferedSamples === 0) return;
    const batch = concatPcm(this.#buffer);
    this.#buffer = [];
    this.#bufferedSamples = 0;
    this.stream.pushAudio(batch);
  }

  /** Sends what is buffered and asks the recogniser for its final words on it now. */
  finalize(): void {
    this.flush();
    this.stream.finalize();
  }
}
