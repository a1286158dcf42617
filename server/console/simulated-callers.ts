/**
 * Simulated callers: @livekit/rtc-node participants that join a call's LiveKit room the way a phone
 * caller's media gateway would, speak espeak-ng sentences with pauses, wait for the bot to answer, and
 * measure when its answer becomes audible. The live page adds them to watch density; `npm run
 * simulate` runs a fleet of them against a separate engine process.
 *
 * Speech is paced by the process-wide playout clock in 10 ms frames, and nothing is sent between
 * utterances, as from a WebRTC client with DTX: an rtc-node AudioSource with a queue would have
 * libwebrtc encode silence all the time (1.5 % of a core per caller, measured).
 */
import { AudioFrame, AudioSource, LocalAudioTrack, Room, RoomEvent, TrackKind, TrackPublishOptions, TrackSource, type RemoteTrack } from '@livekit/rtc-node';
import { LatencyRecorder } from '../../engine/metrics/latency-recorder.ts';
import { synthesizeSpeech } from '../../engine/providers/local/speech.ts';
import { rms } from '../../engine/pcm.ts';
import { withTimeout } from '../../engine/with-timeout.ts';
import { connectRoom, openAudioStream } from '../../engine/transport/ffi-event-router.ts';
import { AGENT_STATE_ATTRIBUTE } from '../../engine/transport/livekit-transport.ts';
import { FramePacer, playoutClock, type PacedOutput } from '../../engine/transport/playout-clock.ts';

const SAMPLE_RATE = 48_000;
const FRAME_SAMPLES = 480; // 10 ms: what an unqueued AudioSource takes
const LEAD_MS = 20;
/** How often a caller waiting for the bot looks again; the answer's arrival time is taken per frame. */
const POLL_MS = 20;
/** RMS (16-bit units) above which a received frame counts as the bot speaking. */
const AUDIBLE_RMS = 300;

/** What a caller to a dispatch line says; short sentences so that turns come often. */
export const CALLER_SENTENCES: readonly string[] = [
  'Hi, this is driver forty two.',
  'I am at the loading dock now.',
  'The gate code does not work.',
  'I will be twenty minutes late because of traffic.',
  'Which bay should I back into?',
  'I have two pallets left on board.',
  'Can you send someone to help?',
  'Thanks, that helps a lot.',
];

/** A call placed for a simulated caller (the answer of `POST /v1/calls`). */
export interface PlacedCall {
  callId: string;
  livekitUrl: string;
  callerToken: string;
}

export interface SimulatedCallerStats {
  utterances: number;
  botResponses: number;
  /** Turns where the bot stayed silent for {@link SimulatedCallerOptions.answerTimeoutMs}. */
  unanswered: number;
}

export interface SimulatedCallerOptions {
  /** Longest wait for the bot to start answering after the caller stops. Default 8000 ms. */
  answerTimeoutMs: number;
  /** Pause after the bot finished, before the caller speaks again (random in this range). */
  pauseMs: [number, number];
  /** First utterance after this delay (spreads callers' turns over time). */
  startDelayMs: number;
  /**
   * Subscribe to the bot's audio and time its answer by ear (default). A caller that does not listen
   * follows the bot's `lk.agent.state` attribute instead, which spares the machine it runs on one Opus
   * decoder; the engine's work is the same either way.
   */
  listen: boolean;
}

const DEFAULT_OPTIONS: SimulatedCallerOptions = { answerTimeoutMs: 8000, pauseMs: [600, 2000], startDelayMs: 0, listen: true };

/** A join step that has not finished within this fails the caller instead of holding up the fleet. */
const JOIN_STEP_TIMEOUT_MS = 20_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class SimulatedCaller implements PacedOutput {
  readonly callId: string;
  readonly stats: SimulatedCallerStats = { utterances: 0, botResponses: 0, unanswered: 0 };
  #room = new Room();
  #source = new AudioSource(SAMPLE_RATE, 1, 0);
  #pacer = new FramePacer({ frameMs: (1000 * FRAME_SAMPLES) / SAMPLE_RATE, leadMs: LEAD_MS, maxLateMs: 100 });
  /** The utterance being sent, and how to tell its speaker it is out. */
  #speech: { pcm: Int16Array; offsetSamples: number; sent: () => void } | null = null;
  #track: LocalAudioTrack | null = null;
  #readers: Array<ReadableStreamDefaultReader<AudioFrame>> = [];
  #abort = new AbortController();
  #options: SimulatedCallerOptions;
  #latency: LatencyRecorder;
  #botAudibleAt = 0;
  #botSilentSince = performance.now();
  #running: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(callId: string, options: SimulatedCallerOptions, latency: LatencyRecorder) {
    this.callId = callId;
    this.#options = options;
    this.#latency = latency;
  }

  /** Joins the call's room, publishes the microphone and starts talking. */
  static async join(call: PlacedCall, latency: LatencyRecorder, options: Partial<SimulatedCallerOptions> = {}): Promise<SimulatedCaller> {
    const caller = new SimulatedCaller(call.callId, { ...DEFAULT_OPTIONS, ...options }, latency);
    if (caller.#options.listen) {
      caller.#room.on(RoomEvent.TrackSubscribed, (track) => caller.#listen(track));
    } else {
      caller.#room.on(RoomEvent.ParticipantAttributesChanged, (changed) => {
        const state = changed[AGENT_STATE_ATTRIBUTE];
        if (state !== undefined) caller.#botAudible(state === 'speaking', performance.now());
      });
    }
    // The bot publishes transcripts on this topic; without a handler rtc-node logs every one of them.
    caller.#room.registerTextStreamHandler('lk.transcription', (reader) => void reader.readAll().catch(() => {}));
    try {
      await withTimeout(connectRoom(caller.#room, call.livekitUrl, call.callerToken, { autoSubscribe: caller.#options.listen, dynacast: false }), JOIN_STEP_TIMEOUT_MS, 'simulated caller joining the room');
      caller.#track = LocalAudioTrack.createAudioTrack('microphone', caller.#source);
      const publish = new TrackPublishOptions();
      publish.source = TrackSource.SOURCE_MICROPHONE;
      await withTimeout(caller.#room.localParticipant!.publishTrack(caller.#track, publish), JOIN_STEP_TIMEOUT_MS, 'simulated caller publishing the microphone');
    } catch (error) {
      await caller.close();
      throw error;
    }
    caller.#running = caller.#talk();
    return caller;
  }

  #listen(track: RemoteTrack): void {
    if (track.kind !== TrackKind.KIND_AUDIO) return;
    // 16 kHz in 50 ms frames is enough to tell speech from silence, at a fraction of the FFI traffic
    // of 48 kHz in 10 ms frames: the callers share the machine with the engine they measure.
    const reader = openAudioStream(track, { sampleRate: 16_000, numChannels: 1, frameSizeMs: 50 }).getReader();
    this.#readers.push(reader);
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          this.#botAudible(rms(value.data) > AUDIBLE_RMS, performance.now());
        }
      } catch {
        // the stream ends when the room closes
      }
    })();
  }

  #botAudible(audible: boolean, now: number): void {
    if (audible) {
      if (this.#botAudibleAt <= this.#botSilentSince) this.#botAudibleAt = now;
      this.#botSilentSince = Infinity;
    } else if (this.#botSilentSince === Infinity) {
      this.#botSilentSince = now;
    }
  }

  /** Whether the bot has been audible at or after `since`. */
  #botStartedAfter(since: number): boolean {
    return this.#botAudibleAt >= since;
  }

  #botQuietFor(ms: number): boolean {
    return this.#botSilentSince !== Infinity && performance.now() - this.#botSilentSince >= ms;
  }

  async #talk(): Promise<void> {
    const signal = this.#abort.signal;
    await sleep(this.#options.startDelayMs, signal);
    let index = Math.floor(Math.random() * CALLER_SENTENCES.length);
    while (!signal.aborted) {
      const pcm = await synthesizeSpeech(CALLER_SENTENCES[index % CALLER_SENTENCES.length], SAMPLE_RATE);
      index++;
      await this.#say(pcm);
      if (signal.aborted) return;
      // The last frame went out up to LEAD_MS before its time.
      const stoppedAt = performance.now() + LEAD_MS;
      this.stats.utterances++;
      const deadline = stoppedAt + this.#options.answerTimeoutMs;
      while (!signal.aborted && !this.#botStartedAfter(stoppedAt) && performance.now() < deadline) await sleep(POLL_MS, signal);
      if (signal.aborted) return;
      if (this.#botStartedAfter(stoppedAt)) {
        this.stats.botResponses++;
        if (this.#options.listen) this.#latency.record(this.#botAudibleAt - stoppedAt);
        // Let the bot finish (bounded) instead of talking over it: barge-in is not what is measured here.
        const finishBy = performance.now() + 15_000;
        while (!signal.aborted && !this.#botQuietFor(600) && performance.now() < finishBy) await sleep(POLL_MS, signal);
      } else {
        this.stats.unanswered++;
      }
      const [low, high] = this.#options.pauseMs;
      await sleep(low + Math.random() * (high - low), signal);
    }
  }

  /** Sends `pcm` at real time; resolves when its last frame is out (or the caller hung up). */
  #say(pcm: Int16Array): Promise<void> {
    return new Promise((resolve) => {
      this.#speech = { pcm, offsetSamples: 0, sent: resolve };
      playoutClock.start(this);
    });
  }

  /** Called by the playout clock. */
  pace(nowMs: number): boolean {
    const speech = this.#speech;
    if (speech === null) return false;
    for (let due = this.#pacer.due(nowMs); due > 0 && speech.offsetSamples < speech.pcm.length && !this.#closed; due--) {
      const frame = new Int16Array(FRAME_SAMPLES);
      frame.set(speech.pcm.subarray(speech.offsetSamples, speech.offsetSamples + FRAME_SAMPLES));
      speech.offsetSamples += FRAME_SAMPLES;
      this.#pacer.sent(1);
      this.#source.captureFrame(new AudioFrame(frame, SAMPLE_RATE, 1, FRAME_SAMPLES)).catch(() => {});
    }
    if (speech.offsetSamples < speech.pcm.length && !this.#closed) return true;
    this.#speech = null;
    this.#pacer.restart();
    speech.sent();
    return false;
  }

  /** Hangs up. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    playoutClock.stop(this);
    this.#speech?.sent();
    this.#speech = null;
    await this.#running.catch(() => {});
    for (const reader of this.#readers) await reader.cancel().catch(() => {});
    await this.#room.disconnect().catch(() => {});
    await this.#track?.close().catch(() => {});
    await this.#source.close().catch(() => {});
  }
}

export interface FleetStats {
  callers: number;
  /** Calls that could not be placed or joined. */
  failed: number;
  utterances: number;
  botResponses: number;
  unanswered: number;
  /** Caller-side, of the callers that listen: end of the caller's speech to the bot's first audible frame. */
  responseLatencyMs: { count: number; p50: number; p95: number; p99: number; max: number };
}

export interface CallerFleetOptions {
  /** Creates a call (room, caller token, bot) and returns where to join. */
  placeCall(): Promise<PlacedCall>;
  /** Ends the call through the API; failures are ignored (the room may be gone). */
  endCall(callId: string): Promise<void>;
  caller?: Partial<SimulatedCallerOptions>;
  /** Told about callers that could not be placed. */
  onError?(error: unknown): void;
}

/** A group of simulated callers added and removed together. */
export class CallerFleet {
  #options: CallerFleetOptions;
  #callers = new Map<string, SimulatedCaller>();
  #ended = { utterances: 0, botResponses: 0, unanswered: 0 };
  #failed = 0;
  #joined = 0;
  #latency = new LatencyRecorder();
  #closed = false;

  constructor(options: CallerFleetOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#callers.size;
  }

  /**
   * Places `count` calls (a few at a time, so the engine's start-up work is spread out) and has a caller
   * join each, until `signal` aborts. Returns the ids of the calls that are now talking. With
   * `listenEvery` N, one caller in N listens to the bot's audio (the others follow its state attribute).
   */
  async add(count: number, opts: { concurrency?: number; spreadMs?: number; signal?: AbortSignal; listenEvery?: number } = {}): Promise<string[]> {
    const added: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      // An aborted signal stops placing new calls; the ones placed so far stay.
      while (next < count && !this.#closed && opts.signal?.aborted !== true) {
        next++;
        let placed: PlacedCall | undefined;
        try {
          placed = await this.#options.placeCall();
          const startDelayMs = Math.random() * (opts.spreadMs ?? 3000);
          const listen = (this.#joined++ % (opts.listenEvery ?? 1)) === 0;
          const caller = await SimulatedCaller.join(placed, this.#latency, { ...this.#options.caller, startDelayMs, listen });
          if (this.#closed) {
            await caller.close();
            return;
          }
          this.#callers.set(caller.callId, caller);
          added.push(caller.callId);
        } catch (error) {
          this.#failed++;
          if (placed !== undefined) await this.#options.endCall(placed.callId).catch(() => {});
          this.#options.onError?.(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, count)) }, worker));
    return added;
  }

  has(callId: string): boolean {
    return this.#callers.has(callId);
  }

  stats(): FleetStats {
    const totals = { ...this.#ended };
    for (const caller of this.#callers.values()) {
      totals.utterances += caller.stats.utterances;
      totals.botResponses += caller.stats.botResponses;
      totals.unanswered += caller.stats.unanswered;
    }
    return { callers: this.#callers.size, failed: this.#failed, ...totals, responseLatencyMs: this.#latency.summary() };
  }

  /** Hangs every caller up and ends their calls. */
  async removeAll(): Promise<void> {
    const callers = [...this.#callers.values()];
    this.#callers.clear();
    await Promise.all(
      callers.map(async (caller) => {
        await caller.close();
        this.#ended.utterances += caller.stats.utterances;
        this.#ended.botResponses += caller.stats.botResponses;
        this.#ended.unanswered += caller.stats.unanswered;
        await this.#options.endCall(caller.callId).catch(() => {});
      }),
    );
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.removeAll();
  }
}
