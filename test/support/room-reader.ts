/**
 * A LiveKit client that reads a call's room the way LiveKit's own client apps do (the agents
 * playground, components' `useTranscriptions` / `useVoiceAssistant`), and nothing of ours: transcripts
 * from `registerTextStreamHandler('lk.transcription')` with the sender LiveKit reports and the
 * stream's `info.attributes`, the agent as the participant of kind agent, its state from
 * `lk.agent.state`. Two of them: @livekit/rtc-node here, and LiveKit's browser SDK in Chromium
 * (browser-room-reader.ts); both fill in a RoomView.
 */
import { AccessToken } from 'livekit-server-sdk';
import { ParticipantKind, Room, RoomEvent, TrackSource, type RemoteParticipant, type TextStreamReader } from '@livekit/rtc-node';

/** One `lk.transcription` stream as a client received it. */
export interface ReadStream {
  /** The sender LiveKit gave the handler (`participantInfo.identity`). */
  sender: string;
  streamId: string;
  /** `reader.info.attributes` once the stream ended. */
  attributes: Record<string, string>;
  /** Each chunk with its arrival time (the reader's clock, ms). */
  chunks: Array<{ atMs: number; text: string }>;
  ended: boolean;
}

export interface SeenParticipant {
  identity: string;
  isAgent: boolean;
  attributes: Record<string, string>;
  /** Sid of its microphone track, when it published one. */
  microphoneSid?: string;
}

export interface RoomView {
  streams: ReadStream[];
  participants: Record<string, SeenParticipant>;
  /** Every `lk.agent.state` value an agent had, in the order seen (repeats removed). */
  agentStates: string[];
  /** Every participant attribute key seen on anyone. */
  attributeKeys: string[];
  /** Identities that left, in order. */
  left: string[];
}

export function readerToken(opts: { apiKey: string; apiSecret: string; roomName: string; identity: string }): Promise<string> {
  const token = new AccessToken(opts.apiKey, opts.apiSecret, { identity: opts.identity });
  token.addGrant({ roomJoin: true, room: opts.roomName, canPublish: false, canSubscribe: true, canPublishData: false });
  return token.toJwt();
}

export class RtcNodeRoomReader {
  readonly room = new Room();
  readonly view: RoomView = { streams: [], participants: {}, agentStates: [], attributeKeys: [], left: [] };

  static async join(opts: { url: string; apiKey: string; apiSecret: string; roomName: string; identity: string }): Promise<RtcNodeRoomReader> {
    const reader = new RtcNodeRoomReader();
    const room = reader.room;
    room.registerTextStreamHandler('lk.transcription', (stream, participantInfo) => void reader.#read(stream, participantInfo.identity));
    room.on(RoomEvent.ParticipantConnected, (p) => reader.#note(p));
    room.on(RoomEvent.ParticipantAttributesChanged, (_changed, p) => reader.#note(p as RemoteParticipant));
    room.on(RoomEvent.TrackPublished, (_publication, p) => reader.#note(p));
    room.on(RoomEvent.ParticipantDisconnected, (p) => reader.view.left.push(p.identity));
    // A plain connect, as a client app does (not the engine's FFI event router).
    await room.connect(opts.url, await readerToken(opts), { autoSubscribe: false, dynacast: false });
    for (const p of room.remoteParticipants.values()) reader.#note(p);
    return reader;
  }

  async #read(stream: TextStreamReader, sender: string): Promise<void> {
    const read: ReadStream = { sender, streamId: stream.info.streamId, attributes: { ...stream.info.attributes }, chunks: [], ended: false };
    this.view.streams.push(read);
    for await (const text of stream) read.chunks.push({ atMs: performance.now(), text });
    read.attributes = { ...stream.info.attributes };
    read.ended = true;
  }

  #note(p: RemoteParticipant): void {
    if (this.room.localParticipant && p.identity === this.room.localParticipant.identity) return;
    const attributes = { ...p.attributes };
    const microphone = [...p.trackPublications.values()].find((t) => t.source === TrackSource.SOURCE_MICROPHONE);
    const isAgent = p.kind === ParticipantKind.AGENT;
    this.view.participants[p.identity] = { identity: p.identity, isAgent, attributes, microphoneSid: microphone?.sid };
    for (const key of Object.keys(attributes)) if (!this.view.attributeKeys.includes(key)) this.view.attributeKeys.push(key);
    const state = attributes['lk.agent.state'];
    if (isAgent && state !== undefined && this.view.agentStates.at(-1) !== state) this.view.agentStates.push(state);
  }

  async leave(): Promise<void> {
    await this.room.disconnect().catch(() => {});
  }
}
