/**
 * What a call needs from the room it lives in. LiveKitTransport is the production one; tests of the
 * voice loop without a server use an in-memory one.
 */
import type { AudioSink } from './audio-sink.ts';

/**
 * LiveKit's agent states (`lk.agent.state`): `initializing` from joining until the call can answer.
 * There is no end state: the bot leaves the room.
 */
export type BotState = 'initializing' | 'listening' | 'thinking' | 'speaking';

/** One update of a transcript segment. */
export interface TranscriptPublication {
  segmentId: string;
  speaker: 'caller' | 'bot';
  /** The segment's whole text so far; it replaces the previous update's. The bot's only grows. */
  text: string;
  /** No update of this segment follows. */
  final: boolean;
}

export type RoomEndReason = 'caller_hung_up' | 'caller_left' | 'caller_removed' | 'room_deleted' | 'bot_removed' | 'connection_lost';

export interface CallTransportEvents {
  /** 16-bit PCM of the caller's microphone at `callerSampleRate`, one frame at a time. */
  onCallerAudio(pcm: Int16Array): void;
  /** A message the caller typed in its app (LiveKit's `lk.chat`): a user turn with this text. */
  onCallerText?(text: string): void;
  /**
   * The call's room is gone for good, and why: `caller_hung_up` (the caller left on purpose: at once),
   * `caller_left` (the caller's connection dropped and it did not come back within the grace period),
   * `caller_removed` (the server removed the caller), `room_deleted`, `bot_removed`, or
   * `connection_lost` (the bot could not rejoin).
   */
  onCallerLeft(reason: RoomEndReason): void;
  /** The room connection dropped and came back; `downMs` of audio may be missing. */
  onReconnected?(downMs: number): void;
  /** The room's metadata changed: how a control plane in another process signals the bot (room-signal.ts). */
  onRoomMetadata?(metadata: string): void;
}

export interface CallTransport {
  readonly callerSampleRate: number;
  readonly sink: AudioSink;
  publishTranscript(t: TranscriptPublication): Promise<void>;
  setBotState(state: BotState): Promise<void>;
  close(): Promise<void>;
}
