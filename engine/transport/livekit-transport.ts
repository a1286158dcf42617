/**
 * The bot in a LiveKit room, through @livekit/rtc-node: subscribes to the caller's microphone (a
 * configured identity, else the first participant that is not an agent) at 48 kHz, publishes its own
 * microphone from an AudioSource, sends transcripts on LiveKit's `lk.transcription` text streams with
 * their speaker as sender (livekit-transcription.ts) and its state in LiveKit's `lk.agent.state`
 * attribute, takes what the caller types on LiveKit's `lk.chat` topic as a user turn, ends the call at
 * once when the caller hangs up or the room is deleted but waits a grace period for a caller whose
 * connection dropped (caller-departure.ts), and rejoins after a
 * dropped connection. It joins as kind agent, which is also what lets it send the caller's words in the
 * caller's name.
 */
import {
  AudioFrame,
  AudioSource,
  DisconnectReason,
  LocalAudioTrack,
  ParticipantKind,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
  type RemoteParticipant,
  type RemoteTrack,
  type TextStreamReader,
} from '@livekit/rtc-node';
import { VoiceError } from '../errors.ts';
import { botDeparture, callerDeparture } from './caller-departure.ts';
import type { AudioSink } from './audio-sink.ts';
import { connectRoom, openAudioStream } from './ffi-event-router.ts';
import { TranscriptionStreams } from './livekit-transcription.ts';
import type { BotState, CallTransport, CallTransportEvents, TranscriptPublication } from './call-transport.ts';

export interface LiveKitTransportOptions {
  url: string;
  /** Agent token: `(url, roomName) => token`, minted again for every (re)join. */
  token: () => Promise<string>;
  callerIdentity?: string;
  /** How long a caller who left may take to come back before the call ends. */
  callerLeftGraceMs: number;
  /** Rejoin attempts after an unexpected disconnect. */
  maxRejoinAttempts: number;
}

export const DEFAULT_LIVEKIT_TRANSPORT: Omit<LiveKitTransportOptions, 'url' | 'token'> = {
  callerLeftGraceMs: 10_000,
  maxRejoinAttempts: 5,
};

export class LiveKitConnectError extends VoiceError {
  constructor(message: string, cause?: unknown) {
    super('VE_LIVEKIT_CONNECT_FAILED', message, { status: 502, retryable: true, cause });
  }
}

const SAMPLE_RATE = 48_000;
/**
 * The rate the caller's audio is asked of rtc-node in: what VAD, Smart Turn and the recogniser use, so
 * libwebrtc's resampler (native, in its audio thread) does the only conversion.
 */
export const CALLER_SAMPLE_RATE = 16_000;
/**
 * The participant attribute LiveKit agents publish their state in: `initializing` from the moment they
 * join until they can answer, then `listening`, `thinking`, `speaking`. As in LiveKit Agents, no state
 * follows the last one: the agent leaves the room, and its attributes with it.
 */
export const AGENT_STATE_ATTRIBUTE = 'lk.agent.state';

/**
 * The text stream topic LiveKit's chat components send on, and LiveKit Agents reads user text from:
 * what the caller types in its app.
 */
export const CHAT_TOPIC = 'lk.chat';

export class LiveKitTransport implements CallTransport {
  readonly callerSampleRate = CALLER_SAMPLE_RATE;
  readonly sink: AudioSink;
  readonly options: LiveKitTransportOptions;
  #events: CallTransportEvents;
  #room: Room;
  #source: AudioSource;
  #track: LocalAudioTrack | null = null;
  #callerIdentity: string | null;
  #callerTrackSid = '';
  #botTrackSid = '';
  #transcripts: TranscriptionStreams;
  #reader: ReadableStreamDefaultReader<AudioFrame> | null = null;
  #graceTimer: NodeJS.Timeout | null = null;
  #state: BotState = 'initializing';
  #closed = false;
  #rejoining = false;

  private constructor(options: LiveKitTransportOptions, events: CallTransportEvents) {
    this.options = options;
    this.#events = events;
    this.#callerIdentity = options.callerIdentity ?? null;
    // No queue: see playout-clock.ts for why the bot paces its own frames.
    this.#source = new AudioSource(SAMPLE_RATE, 1, 0);
    this.#room = new Room();
    this.#transcripts = new TranscriptionStreams(() => this.#room.localParticipant);
    const source = this.#source;
    this.sink = {
      sampleRate: SAMPLE_RATE,
      frameSamples: SAMPLE_RATE / 100,
      sendFrame: (pcm) => {
        if (!this.#closed) source.captureFrame(new AudioFrame(pcm, SAMPLE_RATE, 1, pcm.length)).catch(() => {});
      },
    };
  }

  static async connect(options: Partial<LiveKitTransportOptions> & Pick<LiveKitTransportOptions, 'url' | 'token'>, events: CallTransportEvents): Promise<LiveKitTransport> {
    const transport = new LiveKitTransport({ ...DEFAULT_LIVEKIT_TRANSPORT, ...options }, events);
    try {
      await transport.#join();
    } catch (error) {
      await transport.close();
      throw new LiveKitConnectError(`could not join the LiveKit room: ${(error as Error).message}`, error);
    }
    return transport;
  }

  get room(): Room {
    return this.#room;
  }

  async #join(): Promise<void> {
    const room = this.#room;
    room.on(RoomEvent.TrackSubscribed, (track, _publication, participant) => this.#onTrack(track, participant));
    room.on(RoomEvent.ParticipantConnected, (participant) => this.#onParticipantConnected(participant));
    room.on(RoomEvent.ParticipantDisconnected, (participant) => this.#onParticipantLeft(participant));
    room.on(RoomEvent.Disconnected, (reason) => void this.#onDisconnected(reason));
    room.on(RoomEvent.RoomMetadataChanged, (metadata) => this.#events.onRoomMetadata?.(metadata));
    // Per Room: a rejoin's new Room registers it again.
    room.registerTextStreamHandler(CHAT_TOPIC, (reader, sender) => this.#onChat(reader, sender.identity));
    await connectRoom(room, this.options.url, await this.options.token(), { autoSubscribe: true, dynacast: false });
    await room.localParticipant!.setAttributes({ [AGENT_STATE_ATTRIBUTE]: this.#state });
    this.#track = LocalAudioTrack.createAudioTrack('bot-microphone', this.#source);
    const publishOptions = new TrackPublishOptions();
    publishOptions.source = TrackSource.SOURCE_MICROPHONE;
    this.#botTrackSid = (await room.localParticipant!.publishTrack(this.#track, publishOptions)).sid ?? '';
    // Participants and tracks that were there before we joined.
    for (const participant of room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        if (publication.track) this.#onTrack(publication.track as RemoteTrack, participant);
      }
    }
  }

  #isCaller(participant: RemoteParticipant): boolean {
    if (this.#callerIdentity !== null) return participant.identity === this.#callerIdentity;
    return participant.kind !== ParticipantKind.AGENT;
  }

  #onTrack(track: RemoteTrack, participant: RemoteParticipant): void {
    if (track.kind !== TrackKind.KIND_AUDIO || !this.#isCaller(participant) || this.#closed) return;
    this.#callerIdentity ??= participant.identity;
    if (participant.identity !== this.#callerIdentity) return;
    this.#callerTrackSid = track.sid ?? '';
    this.#cancelGrace();
    // 20 ms frames: half the native callbacks of the default 10 ms, still one VAD window in two.
    void this.#pump(openAudioStream(track, { sampleRate: CALLER_SAMPLE_RATE, numChannels: 1, frameSizeMs: 20 }));
  }

  async #pump(stream: ReadableStream<AudioFrame>): Promise<void> {
    const previous = this.#reader;
    const reader = stream.getReader();
    this.#reader = reader;
    if (previous) await previous.cancel().catch(() => {});
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.#closed || this.#reader !== reader) break;
        this.#events.onCallerAudio(value.data);
      }
    } catch {
      // The track went away; a new subscription starts a new pump.
    } finally {
      reader.releaseLock();
    }
  }

  /**
   * Text from the caller only, as in LiveKit Agents (the participant whose audio the bot follows, or
   * the one it would follow if the caller types before its microphone arrives): anyone else in the
   * room, a dispatcher listening in, is not talking to the bot.
   */
  #onChat(reader: TextStreamReader, identity: string): void {
    const participant = this.#room.remoteParticipants.get(identity);
    if (this.#closed || !participant || !this.#isCaller(participant)) return;
    this.#callerIdentity ??= identity;
    if (identity !== this.#callerIdentity) return;
    reader
      .readAll()
      .then((text) => {
        if (!this.#closed && text.trim() !== '') this.#events.onCallerText?.(text);
      })
      .catch(() => {
        // The stream broke off (the caller left mid-message): there is no message to answer.
      });
  }

  #onParticipantConnected(participant: RemoteParticipant): void {
    if (participant.identity === this.#callerIdentity) this.#cancelGrace();
  }

  /** rtc-node sets the participant's disconnectReason from the server's event before emitting it. */
  #onParticipantLeft(participant: RemoteParticipant): void {
    if (participant.identity !== this.#callerIdentity || this.#closed) return;
    this.#cancelGrace();
    const deliberate = callerDeparture(participant.disconnectReason);
    if (deliberate !== null) {
      this.#events.onCallerLeft(deliberate);
      return;
    }
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = null;
      if (!this.#closed) this.#events.onCallerLeft('caller_left');
    }, this.options.callerLeftGraceMs);
  }

  #cancelGrace(): void {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
  }

  /** An unexpected drop: rejoin with a fresh token, re-publish, keep the call going. */
  async #onDisconnected(reason: DisconnectReason): Promise<void> {
    if (this.#closed || this.#rejoining) return;
    const final = botDeparture(reason);
    if (final !== null) {
      this.#cancelGrace();
      this.#events.onCallerLeft(final);
      return;
    }
    this.#rejoining = true;
    const downSince = performance.now();
    try {
      for (let attempt = 0; attempt < this.options.maxRejoinAttempts && !this.#closed; attempt++) {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
        try {
          this.#room.removeAllListeners();
          this.#room = new Room();
          await this.#join();
          this.#events.onReconnected?.(performance.now() - downSince);
          return;
        } catch {
          // try again
        }
      }
      this.#events.onCallerLeft('connection_lost');
    } finally {
      this.#rejoining = false;
    }
  }

  /** The caller's words in the caller's name, the bot's in its own (see livekit-transcription.ts). */
  async publishTranscript(t: TranscriptPublication): Promise<void> {
    const participant = this.#room.localParticipant;
    if (!participant || this.#closed) return;
    const update = { segmentId: t.segmentId, text: t.text, final: t.final };
    if (t.speaker === 'bot') {
      await this.#transcripts.publishDelta({ ...update, senderIdentity: participant.identity, trackSid: this.#botTrackSid });
    } else if (this.#callerIdentity !== null) {
      await this.#transcripts.publishSnapshot({ ...update, senderIdentity: this.#callerIdentity, trackSid: this.#callerTrackSid });
    }
  }

  async setBotState(state: BotState): Promise<void> {
    this.#state = state;
    if (this.#closed) return;
    await this.#room.localParticipant?.setAttributes({ [AGENT_STATE_ATTRIBUTE]: state });
  }

  /** Idempotent: leaves the room and releases the audio source. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelGrace();
    // Ends the bot's open segment in the room before leaving it.
    await this.#transcripts.close();
    await this.#reader?.cancel().catch(() => {});
    await this.#room.disconnect().catch(() => {});
    await this.#track?.close().catch(() => {});
    await this.#source.close().catch(() => {});
  }
}
