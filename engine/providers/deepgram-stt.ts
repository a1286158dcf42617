import { DeepgramClient } from '@deepgram/sdk';
import type { VoiceError } from '../errors.ts';
import { SttDisconnectedError, SttUnavailableError } from './errors.ts';
import type { SpeechToText, SttStream, SttStreamOptions, TranscriptResult } from './stt.ts';

/**
 * Deepgram live transcription (`/v1/listen`) through the official SDK.
 *
 * Reliability is handled here rather than by the SDK's own reconnecting socket, because a reconnect
 * must also replay audio: every pushed chunk stays buffered (up to `maxReplayMs`) until a final result
 * covers it; after an unexpected drop a new connection is opened with capped exponential backoff and
 * jitter, the unsettled audio is sent again first, and the new connection's timestamps are shifted by
 * where that audio starts in the call, so results stay call-relative and no final segment is lost.
 *
 * An outage is told, not hidden: when a reconnection attempt fails, `onUnavailable` fires (once per
 * outage); when a connection proves itself again (a result, or staying open), `onReconnected` gives how
 * long the recogniser was gone. The stream keeps trying until the outage has lasted `maxOutageMs`, then
 * gives up with `onError` (VE_STT_DISCONNECTED).
 *
 * `close()` sends `CloseStream` and waits (bounded by `closeTimeoutMs`) for the last results; audio
 * pushed while the stream was between connections at that moment is dropped. The SDK does not expose
 * the HTTP status of a refused upgrade, so a bad key looks like an outage (reported at once as
 * unavailable) until the outage limit.
 */

export interface DeepgramSttOptions {
  apiKey: string;
  /** Base URL of the service, e.g. `wss://api.deepgram.com` (the default) or a local fake `ws://127.0.0.1:port`. */
  baseUrl?: string;
  /** Default `nova-3`. */
  model?: string;
  /** Default language when a stream does not give one. */
  language?: string;
  /** Silence that makes Deepgram end a segment with `speech_final`; `false` disables it. Default 300 ms. */
  endpointingMs?: number | false;
  /** Default true. */
  punctuate?: boolean;
  /** Default false. */
  smartFormat?: boolean;
  /**
   * Ask for an `UtteranceEnd` message after this long a gap following the last finalised word (Deepgram
   * recommends 1000 or more; it needs interim results, which this class always asks for). An end-of-speech
   * signal where endpointing's `speech_final` does not come (background noise). Default 1000; `false`: off.
   */
  utteranceEndMs?: number | false;
  /** Send `KeepAlive` when no audio went out for this long (Deepgram closes idle streams after 10 s). Default 4000 ms. */
  keepAliveIntervalMs?: number;
  /** Give up on one connection attempt after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Reconnection after an unexpected drop (and for the first connection). */
  reconnect?: {
    /** Consecutive failed attempts before `onError`, whatever the outage limit. Default: no limit. */
    maxAttempts?: number;
    /** Default 200 ms; doubles per failed attempt. */
    initialDelayMs?: number;
    /** Cap of the delay between attempts, jitter included. Default 5000 ms. */
    maxDelayMs?: number;
    /** Give up after the recogniser was unreachable this long; a stream's own `maxOutageMs` wins. Default 60 000 ms. */
    maxOutageMs?: number;
  };
  /** Upper bound on the audio kept for replay while no final arrives. Default 30 000 ms. */
  maxReplayMs?: number;
  /** After `CloseStream`, wait this long for the server to send its last results and close. Default 3000 ms. */
  closeTimeoutMs?: number;
}

/** An open connection that lasted this long counts as working even if it carried no results. */
const STABLE_CONNECTION_MS = 2000;

type ListenSocket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;

/** The subset of Deepgram's `Results` message this class reads. */
interface ResultsMessage {
  type: 'Results';
  start: number;
  duration: number;
  is_final?: boolean;
  speech_final?: boolean;
  /** Set on the result that answers a `Finalize` message. */
  from_finalize?: boolean;
  channel: { alternatives: Array<{ transcript: string; confidence: number; words?: Array<{ start: number; end: number }> }> };
}

/** Deepgram's `UtteranceEnd` message. */
interface UtteranceEndMessage {
  type: 'UtteranceEnd';
  channel: number[];
  /** Seconds into the connection's audio where the last finalised word ends. */
  last_word_end: number;
}

export class DeepgramStt implements SpeechToText {
  readonly label: string;
  private readonly client: DeepgramClient;
  private readonly options: DeepgramSttOptions;

  constructor(options: DeepgramSttOptions) {
    this.options = options;
    this.label = `deepgram/${options.model ?? 'nova-3'}`;
    this.client = new DeepgramClient({ apiKey: options.apiKey, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
  }

  stream(opts: SttStreamOptions): SttStream {
    return new DeepgramSttStream(this.client, this.options, opts);
  }
}

type StreamState = 'connecting' | 'open' | 'backoff' | 'closing' | 'closed';

/** Unsettled audio: not yet covered by a final result, so it is replayed after a reconnect. */
interface BufferedChunk {
  /** Position of the first sample in the call. */
  startSamples: number;
  pcm: Int16Array;
}

class DeepgramSttStream implements SttStream {
  private readonly client: DeepgramClient;
  private readonly config: DeepgramSttOptions;
  private readonly opts: SttStreamOptions;
  private readonly sampleRate: number;
  private state: StreamState = 'connecting';
  private socket: ListenSocket | undefined;
  /** Bumped per connection so that late events of an old socket are ignored. */
  private generation = 0;
  private failedAttempts = 0;
  /** When the last working connection was lost (or the first attempt failed); unset while connected. */
  private outageStartedMs: number | undefined;
  private unavailableReported = false;
  /** Whether the current connection has proved itself: it delivered a result, or stayed open (STABLE_CONNECTION_MS). */
  private proven = false;
  private readonly chunks: BufferedChunk[] = [];
  private pushedSamples = 0;
  /** Call position up to which final results have arrived. */
  private settledSamples = 0;
  /** Call position where the current connection's audio starts (its timestamp zero). */
  private connectionBaseSamples = 0;
  private finalizePending = false;
  private openedAtMs = 0;
  private lastSendMs = 0;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private outageTimer: NodeJS.Timeout | undefined;
  private closePromise: Promise<void> | undefined;
  private resolveServerClose: (() => void) | undefined;

  constructor(client: DeepgramClient, config: DeepgramSttOptions, opts: SttStreamOptions) {
    this.client = client;
    this.config = config;
    this.opts = opts;
    this.sampleRate = opts.sampleRate;
    const keepAliveMs = config.keepAliveIntervalMs ?? 4000;
    this.keepAliveTimer = setInterval(() => this.keepAlive(keepAliveMs), Math.max(50, keepAliveMs / 4));
    this.keepAliveTimer.unref();
    void this.connect();
  }

  pushAudio(pcm: Int16Array): void {
    if (this.state === 'closing' || this.state === 'closed' || pcm.length === 0) return;
    // Copy: callers commonly pass views into ring buffers that are overwritten later.
    const copy = pcm.slice();
    this.chunks.push({ startSamples: this.pushedSamples, pcm: copy });
    this.pushedSamples += copy.length;
    const maxReplaySamples = Math.round(((this.config.maxReplayMs ?? 30_000) * this.sampleRate) / 1000);
    if (this.pushedSamples - this.settledSamples > maxReplaySamples) this.settle(this.pushedSamples - maxReplaySamples);
    if (this.state === 'open') this.sendAudio(copy);
  }

  finalize(): void {
    if (this.state === 'open') this.sendControl('Finalize');
    else if (this.state === 'connecting' || this.state === 'backoff') this.finalizePending = true;
  }

  close(): Promise<void> {
    this.closePromise ??= this.closeNow();
    return this.closePromise;
  }

  private async closeNow(): Promise<void> {
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    this.clearTimers();
    const socket = this.socket;
    if (wasOpen && socket !== undefined) {
      // CloseStream makes the server flush its last results and close; wait for that, within a bound.
      const serverClosed = new Promise<void>((resolve) => (this.resolveServerClose = resolve));
      this.sendControl('CloseStream');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([serverClosed, new Promise<void>((r) => (timer = setTimeout(r, this.config.closeTimeoutMs ?? 3000)))]);
      clearTimeout(timer);
    }
    this.generation++;
    this.state = 'closed';
    this.socket = undefined;
    try {
      socket?.close();
    } catch {
      // Already closed.
    }
    this.chunks.length = 0;
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    this.state = 'connecting';
    const c = this.config;
    let socket: ListenSocket;
    try {
      socket = await this.client.listen.v1.connect({
        model: c.model ?? 'nova-3',
        encoding: 'linear16',
        sample_rate: this.sampleRate,
        channels: 1,
        interim_results: 'true',
        punctuate: c.punctuate === false ? 'false' : 'true',
        smart_format: c.smartFormat ? 'true' : 'false',
        endpointing: c.endpointingMs === false ? 'false' : (c.endpointingMs ?? 300),
        ...(c.utteranceEndMs !== false ? { utterance_end_ms: c.utteranceEndMs ?? 1000 } : {}),
        ...((this.opts.language ?? c.language) !== undefined ? { language: this.opts.language ?? c.language } : {}),
        // This class reconnects itself, because a reconnect must replay audio.
        reconnectAttempts: 0,
        shouldReconnect: () => false,
        connectionTimeoutInSeconds: (c.connectTimeoutMs ?? 5000) / 1000,
      });
    } catch (err) {
      if (generation === this.generation) this.onConnectionLost(generation, err);
      return;
    }
    if (generation !== this.generation || this.state !== 'connecting') {
      socket.close();
      return;
    }
    this.socket = socket;
    socket.on('open', () => this.onOpen(generation));
    socket.on('message', (msg: unknown) => this.onMessage(generation, msg));
    socket.on('close', (event: { code?: number }) => this.onClose(generation, event));
    socket.on('error', (err: Error) => this.onConnectionLost(generation, err));
    socket.connect();
  }

  private onOpen(generation: number): void {
    if (generation !== this.generation || this.state !== 'connecting') return;
    this.state = 'open';
    this.openedAtMs = Date.now();
    this.proven = false;
    this.stableTimer = setTimeout(() => this.onProven(generation), STABLE_CONNECTION_MS);
    // Timestamps of this connection count from the first unsettled sample, which is replayed first.
    this.connectionBaseSamples = this.settledSamples;
    for (const chunk of this.chunks) this.sendAudio(chunk.pcm);
    if (this.finalizePending) {
      this.finalizePending = false;
      this.sendControl('Finalize');
    }
  }

  /** The current connection works (it sent a result, or stayed open): any outage is over. */
  private onProven(generation: number): void {
    if (generation !== this.generation || this.state !== 'open' || this.proven) return;
    this.proven = true;
    clearTimeout(this.stableTimer);
    this.failedAttempts = 0;
    if (this.outageStartedMs === undefined) return;
    const downMs = Date.now() - this.outageStartedMs;
    this.outageStartedMs = undefined;
    this.unavailableReported = false;
    clearTimeout(this.outageTimer);
    this.safely(() => this.opts.onReconnected?.(downMs));
  }

  private onMessage(generation: number, msg: unknown): void {
    if (generation !== this.generation) return;
    const m = msg as { type?: string };
    const baseMs = (this.connectionBaseSamples / this.sampleRate) * 1000;
    if (m.type === 'UtteranceEnd') {
      const lastWordEndS = (msg as UtteranceEndMessage).last_word_end;
      if (typeof lastWordEndS === 'number' && lastWordEndS >= 0) {
        this.safely(() => this.opts.onEndOfSpeech?.({ kind: 'utterance_end', lastWordEndMs: baseMs + lastWordEndS * 1000 }));
      }
      return;
    }
    if (m.type !== 'Results') return;
    this.onProven(generation);
    const r = msg as ResultsMessage;
    const alt = r.channel?.alternatives?.[0];
    if (r.is_final) {
      this.settle(this.connectionBaseSamples + Math.round((r.start + r.duration) * this.sampleRate));
    }
    if (alt === undefined || alt.transcript.trim() === '') return;
    const words = alt.words ?? [];
    // The recognised words' span is tighter than the result window, which includes silence.
    const startS = words.length > 0 ? words[0].start : r.start;
    const endS = words.length > 0 ? words[words.length - 1].end : r.start + r.duration;
    const result: TranscriptResult = {
      kind: r.is_final ? 'final' : 'interim',
      text: alt.transcript,
      startMs: baseMs + startS * 1000,
      endMs: baseMs + endS * 1000,
      confidence: alt.confidence,
      speechFinal: r.is_final === true && r.speech_final === true,
    };
    this.safely(() => this.opts.onResult(result));
    if (result.speechFinal && r.from_finalize !== true && words.length > 0) {
      this.safely(() => this.opts.onEndOfSpeech?.({ kind: 'speech_final', lastWordEndMs: result.endMs }));
    }
  }

  private onClose(generation: number, event: { code?: number }): void {
    if (generation !== this.generation) return;
    if (this.state === 'closing') {
      this.resolveServerClose?.();
      return;
    }
    this.onConnectionLost(generation, new Error(`socket closed with code ${event?.code ?? 'unknown'}`));
  }

  /** An attempt failed or an open socket dropped: back off and try again, or give up. */
  private onConnectionLost(generation: number, cause: unknown): void {
    if (generation !== this.generation) return;
    if (this.state === 'closing') {
      this.resolveServerClose?.();
      return;
    }
    if (this.state === 'closed' || this.state === 'backoff') return;
    this.generation++;
    clearTimeout(this.stableTimer);
    const old = this.socket;
    this.socket = undefined;
    try {
      old?.close();
    } catch {
      // Already closed.
    }
    const policy = this.config.reconnect ?? {};
    // Only a connection that proved itself resets the attempts and ends an outage, so a server that
    // accepts and drops at once is an outage that goes on, not a string of short ones.
    const wasWorking = this.state === 'open' && (this.proven || Date.now() - this.openedAtMs >= STABLE_CONNECTION_MS);
    if (wasWorking) this.failedAttempts = 0;
    this.failedAttempts++;
    const now = Date.now();
    if (this.outageStartedMs === undefined) {
      this.outageStartedMs = now;
      this.outageTimer = setTimeout(() => this.onOutageLimit(), this.maxOutageMs());
    }
    const outageMs = now - this.outageStartedMs;
    if (this.failedAttempts > (policy.maxAttempts ?? Number.POSITIVE_INFINITY) || outageMs >= this.maxOutageMs()) {
      this.giveUp(`Deepgram unreachable for ${outageMs} ms (${this.failedAttempts - 1} reconnection attempts)`, cause);
      return;
    }
    // A dropped socket that reconnects at once is no outage; a failed attempt is.
    if (!wasWorking && !this.unavailableReported) {
      this.unavailableReported = true;
      const error = new SttUnavailableError(`Deepgram cannot be reached (attempt ${this.failedAttempts} failed); retrying`, { cause });
      this.safely(() => this.opts.onUnavailable?.(error));
    }
    this.state = 'backoff';
    const capMs = policy.maxDelayMs ?? 5000;
    const baseMs = Math.min(capMs, (policy.initialDelayMs ?? 200) * 2 ** (this.failedAttempts - 1));
    // Jitter spreads the reconnects of many calls that lost the same upstream at the same moment;
    // "equal jitter" keeps every delay between half the base and the base, so the cap holds.
    const delayMs = baseMs / 2 + Math.random() * (baseMs / 2);
    this.backoffTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private maxOutageMs(): number {
    return this.opts.maxOutageMs ?? this.config.reconnect?.maxOutageMs ?? 60_000;
  }

  /** The outage limit passed while waiting or connecting; an open, unproven socket gets to prove itself. */
  private onOutageLimit(): void {
    if (this.outageStartedMs === undefined || this.state === 'open' || this.state === 'closing' || this.state === 'closed') return;
    this.generation++;
    const socket = this.socket;
    this.socket = undefined;
    try {
      socket?.close();
    } catch {
      // Already closed.
    }
    this.giveUp(`Deepgram unreachable for ${Date.now() - this.outageStartedMs} ms (${this.failedAttempts} failed attempts)`, undefined);
  }

  private giveUp(message: string, cause: unknown): void {
    this.state = 'closed';
    this.clearTimers();
    this.chunks.length = 0;
    this.closePromise = Promise.resolve();
    const error: VoiceError = new SttDisconnectedError(message, { cause });
    this.safely(() => this.opts.onError(error));
  }

  private clearTimers(): void {
    clearInterval(this.keepAliveTimer);
    clearTimeout(this.backoffTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.outageTimer);
  }

  /** Forget audio before `toSamples`: a final result covers it, so it never needs replaying. */
  private settle(toSamples: number): void {
    const target = Math.min(toSamples, this.pushedSamples);
    if (target <= this.settledSamples) return;
    while (this.chunks.length > 0) {
      const c = this.chunks[0];
      const end = c.startSamples + c.pcm.length;
      if (end <= target) {
        this.chunks.shift();
        continue;
      }
      if (c.startSamples < target) this.chunks[0] = { startSamples: target, pcm: c.pcm.subarray(target - c.startSamples) };
      break;
    }
    this.settledSamples = target;
  }

  private keepAlive(intervalMs: number): void {
    if (this.state === 'open' && Date.now() - this.lastSendMs >= intervalMs) this.sendControl('KeepAlive');
  }

  private sendAudio(pcm: Int16Array): void {
    try {
      this.socket?.sendMedia(pcm);
      this.lastSendMs = Date.now();
    } catch {
      // The socket is going down; the audio stays buffered and is replayed on reconnect.
    }
  }

  private sendControl(type: 'KeepAlive' | 'Finalize' | 'CloseStream'): void {
    try {
      const s = this.socket;
      if (s === undefined) return;
      if (type === 'KeepAlive') s.sendKeepAlive({ type });
      else if (type === 'Finalize') s.sendFinalize({ type });
      else s.sendCloseStream({ type });
      this.lastSendMs = Date.now();
    } catch {
      // As above: a dying socket is handled by its close event.
    }
  }

  /** Listener faults must never break the stream. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch {
      // Deliberately ignored: the caller's listener threw.
    }
  }
}
