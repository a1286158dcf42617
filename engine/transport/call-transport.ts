/**
 * What a call needs from the room it lives in. LiveKitTransport is the production one; tests of the
 * voice loop without a server use an in-memory one.
 */
import type { AudioSink } from './audio-sink.ts';

export type BotState = 'listening' | 'thinking' | 'speaking';

export interface TranscriptPublication {
  segmentId: string;
  speaker: 'caller' | 'bot';
  text: string;
  final: boolean;
}

export interface CallTransportEvents {
  /** 16-bit PCM of the caller's microphone at `callerSampleRate`, one frame at a time. */
  onCallerAudio(pcm: Int16Array): void;
  /** The caller is gone for good (after the grace period). */
  onCallerLeft(): void;
  /** The room connection dropped and came back; `downMs` of audio may be missing. */
  onReconnected?(downMs: number): void;
}

export interface CallTransport {
  readonly callerSampleRate: number;
  readonly sink: AudioSink;
  publishTranscript(t: TranscriptPublication): Promise<void>;
  setBotState(state: BotState): Promise<void>;
  close(): Promise<void>;
}
