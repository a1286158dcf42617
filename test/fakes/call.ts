import type { MediaEvent, MediaEventListener } from '../../engine/call-audio.ts';
import type { VoiceCallMedia } from '../../engine/call/voice-call.ts';
import type { TurnRule } from '../../engine/events.ts';
import type { BotState, CallTransport, TranscriptPublication } from '../../engine/transport/call-transport.ts';

/**
 * In-memory stand-ins for what a VoiceCall lives between: the media path (VAD and turn events, which
 * the test emits by hand) and the room (which records what the bot sends). With the fakes of
 * providers.ts, a call runs as "these events in, these events out" without a worker or a server.
 */

/** The media path of one call: counts the caller's audio and emits the VAD and turn events the test scripts. */
export class FakeCallMedia implements VoiceCallMedia {
  processedSamples = 0;
  writtenSamples = 0;
  #listeners = new Set<MediaEventListener>();

  writeCallerAudio(pcm: Int16Array): number {
    this.writtenSamples += pcm.length;
    return pcm.length;
  }

  onEvent(listener: MediaEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The recogniser's end-of-speech signals the call forwarded, by where their last word ends (ms). */
  readonly recognizerEndsOfSpeechMs: number[] = [];

  handleRecognizerEndOfSpeech(lastWordEndMs: number): void {
    this.recognizerEndsOfSpeechMs.push(lastWordEndMs);
  }

  emit(event: MediaEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  /** The VAD heard the caller start at `offsetMs` (16 kHz media offsets). */
  speechStart(offsetMs: number): void {
    this.processedSamples = Math.max(this.processedSamples, offsetMs * 16);
    this.emit({ type: 'speech_start', offsetSamples: offsetMs * 16, confirmedAtSamples: offsetMs * 16 });
  }

  /** The VAD heard the caller stop at `offsetMs`, and has processed the audio up to there. */
  speechEnd(offsetMs: number): void {
    this.processedSamples = Math.max(this.processedSamples, offsetMs * 16);
    this.emit({ type: 'speech_end', offsetSamples: offsetMs * 16, confirmedAtSamples: offsetMs * 16 });
  }

  turnComplete(turnId: number, opts: { speechEndMs: number; decidedAtMs: number; probability?: number | null; rule?: TurnRule }): void {
    this.emit({
      type: 'user_turn_complete',
      turnId,
      probability: opts.probability === undefined ? 0.9 : opts.probability,
      rule: opts.rule ?? 'model',
      speechEndSamples: opts.speechEndMs * 16,
      decidedAtSamples: opts.decidedAtMs * 16,
    });
  }
}

/** A room that records the bot's frames, transcript publications and agent states. */
export class FakeCallTransport implements CallTransport {
  readonly callerSampleRate = 16_000;
  readonly transcripts: TranscriptPublication[] = [];
  readonly states: BotState[] = [];
  sentFrames = 0;
  /** Frames with any non-zero sample: the bot's voice, not the silence sent when it stops. */
  audibleFrames = 0;
  closed = false;
  readonly sink = {
    sampleRate: 48_000,
    frameSamples: 480,
    sendFrame: (pcm: Int16Array): void => {
      this.sentFrames++;
      if (pcm.some((s) => s !== 0)) this.audibleFrames++;
    },
  };

  publishTranscript(t: TranscriptPublication): Promise<void> {
    this.transcripts.push({ ...t });
    return Promise.resolve();
  }

  setBotState(state: BotState): Promise<void> {
    this.states.push(state);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** Polls `check` until it returns something truthy, which it resolves with. */
export async function waitUntil<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
