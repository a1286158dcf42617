/**
 * A caller in a LiveKit room, made of @livekit/rtc-node: publishes a microphone fed with PCM in real
 * time and records, frame by frame with arrival times, what the bot's track sends back.
 */
import { AccessToken } from 'livekit-server-sdk';
import { AudioFrame, AudioSource, AudioStream, LocalAudioTrack, Room, RoomEvent, TrackKind, TrackPublishOptions, TrackSource, type RemoteTrack } from '@livekit/rtc-node';
import { rms } from '../../engine/pcm.ts';

export interface ReceivedFrame {
  at: number;
  rms: number;
}

const SAMPLE_RATE = 48_000;
const FRAME_SAMPLES = 480;

export class TestCaller {
  readonly room = new Room();
  readonly identity: string;
  readonly received: ReceivedFrame[] = [];
  readonly botAttributes: Array<{ at: number; attributes: Record<string, string> }> = [];
  #source = new AudioSource(SAMPLE_RATE, 1, 200);
  #track: LocalAudioTrack | null = null;
  #readers: Array<ReadableStreamDefaultReader<AudioFrame>> = [];
  #playing: Promise<void> = Promise.resolve();
  #silenceTimer: NodeJS.Timeout | null = null;

  private constructor(identity: string) {
    this.identity = identity;
  }

  static async join(opts: { url: string; apiKey: string; apiSecret: string; roomName: string; identity?: string }): Promise<TestCaller> {
    const identity = opts.identity ?? 'caller';
    const token = new AccessToken(opts.apiKey, opts.apiSecret, { identity });
    token.addGrant({ roomJoin: true, room: opts.roomName, canPublish: true, canSubscribe: true });
    return TestCaller.connect({ url: opts.url, token: await token.toJwt(), identity });
  }

  /** Joins with a token minted elsewhere (e.g. the `callerToken` of `POST /v1/calls`). */
  static async connect(opts: { url: string; token: string; identity: string }): Promise<TestCaller> {
    const caller = new TestCaller(opts.identity);
    caller.room.on(RoomEvent.TrackSubscribed, (track) => caller.#record(track));
    // The bot sends transcripts on this topic; without a handler rtc-node logs every one of them.
    caller.room.registerTextStreamHandler('lk.transcription', (reader) => void reader.readAll().catch(() => {}));
    caller.room.on(RoomEvent.ParticipantAttributesChanged, (changed, participant) => {
      if (participant.identity !== caller.identity) caller.botAttributes.push({ at: performance.now(), attributes: { ...changed } });
    });
    await caller.room.connect(opts.url, opts.token, { autoSubscribe: true, dynacast: false });
    caller.#track = LocalAudioTrack.createAudioTrack('microphone', caller.#source);
    const options = new TrackPublishOptions();
    options.source = TrackSource.SOURCE_MICROPHONE;
    await caller.room.localParticipant!.publishTrack(caller.#track, options);
    caller.#keepSilent();
    return caller;
  }

  #record(track: RemoteTrack): void {
    if (track.kind !== TrackKind.KIND_AUDIO) return;
    const reader = new AudioStream(track, { sampleRate: SAMPLE_RATE, numChannels: 1 }).getReader();
    this.#readers.push(reader);
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          this.received.push({ at: performance.now(), rms: rms(value.data) });
        }
      } catch {
        // closed
      }
    })();
  }

  /** Between utterances the microphone sends silence, as a real one does. */
  #keepSilent(): void {
    const silence = new Int16Array(FRAME_SAMPLES);
    let next = performance.now();
    const tick = () => {
      next += 10;
      if (this.#source.queuedDuration < 60) void this.#source.captureFrame(new AudioFrame(silence, SAMPLE_RATE, 1, FRAME_SAMPLES)).catch(() => {});
      this.#silenceTimer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  }

  /** Speaks 48 kHz PCM in real time; resolves when the last frame is queued. Returns when it started. */
  say(pcm: Int16Array): { startedAt: number; done: Promise<void> } {
    const startedAt = performance.now();
    const previous = this.#playing;
    const done = previous.then(async () => {
      if (this.#silenceTimer) clearTimeout(this.#silenceTimer);
      this.#silenceTimer = null;
      for (let offset = 0; offset < pcm.length; offset += FRAME_SAMPLES) {
        const frame = new Int16Array(FRAME_SAMPLES);
        frame.set(pcm.subarray(offset, offset + FRAME_SAMPLES));
        await this.#source.captureFrame(new AudioFrame(frame, SAMPLE_RATE, 1, FRAME_SAMPLES));
      }
      this.#keepSilent();
    });
    this.#playing = done;
    return { startedAt, done };
  }

  /** The first time at or after `since` when the bot's audio was audible. */
  firstAudible(since: number, threshold = 300): number | null {
    return this.received.find((f) => f.at >= since && f.rms > threshold)?.at ?? null;
  }

  /** The first time after `since` that the bot stayed silent for `quietMs`. */
  silentSince(since: number, quietMs = 200, threshold = 300): number | null {
    let start: number | null = null;
    for (const frame of this.received) {
      if (frame.at < since) continue;
      if (frame.rms <= threshold) {
        start ??= frame.at;
        if (frame.at - start >= quietMs) return start;
      } else {
        start = null;
      }
    }
    return null;
  }

  /** Arrival time of the last audible frame in `[from, to)`, or null. */
  lastAudible(from: number, to: number, threshold = 300): number | null {
    for (let i = this.received.length - 1; i >= 0; i--) {
      const frame = this.received[i];
      if (frame.at >= from && frame.at < to && frame.rms > threshold) return frame.at;
    }
    return null;
  }

  audibleMs(from: number, to: number, threshold = 300): number {
    return this.received.filter((f) => f.at >= from && f.at < to && f.rms > threshold).length * 10;
  }

  async leave(): Promise<void> {
    if (this.#silenceTimer) clearTimeout(this.#silenceTimer);
    for (const reader of this.#readers) await reader.cancel().catch(() => {});
    await this.room.disconnect().catch(() => {});
    await this.#track?.close().catch(() => {});
    await this.#source.close().catch(() => {});
  }
}

/** Polls `check` (which may be async) until it returns something truthy, which it resolves with. */
export async function waitFor<T>(what: string, check: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
