import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type RawData, type WsServer, type WsSocket } from './ws.ts';
import { closeServer, delay, FailurePlan, listenLoopback, SocketTracker } from './net.ts';

/**
 * A local stand-in for Deepgram's live transcription WebSocket (`wss://api.deepgram.com/v1/listen`),
 * speaking the same wire protocol as the official SDK expects: query parameters on the upgrade URL,
 * `Authorization: Token <key>`, binary linear16 audio in, JSON `Results` / `Metadata` /
 * `SpeechStarted` / `UtteranceEnd` out, JSON `KeepAlive` / `Finalize` / `CloseStream` in.
 *
 * It does not recognise words: a simple energy detector finds speech segments in the audio clock
 * (samples received, not wall time, so audio may be sent faster than real time) and the n-th final
 * segment is given the n-th line of a script. Result windows tile the audio like the real service:
 * each final covers from the end of the previous final to the current position.
 */

export interface DeepgramFakeOptions {
  /** When set, the upgrade must carry `Authorization: Token <apiKey>`, else it is refused with 401. */
  apiKey?: string;
  /** Trailing silence that ends a segment when the client sends no `endpointing`. Default 300 ms. */
  endpointingMs?: number;
  /** Audio between interim results while a segment lasts. Default 200 ms. */
  interimIntervalMs?: number;
  /** RMS level (16-bit units) above which a 10 ms frame counts as speech. Default 400. */
  speechRms?: number;
  /** Consecutive speech needed to open a segment, so a click is not a word. Default 30 ms. */
  minSpeechMs?: number;
  /** Delay before answering the WebSocket upgrade (first-response latency). Default 0. */
  openDelayMs?: number;
  /** Delay before each message the server sends. Default 0. */
  messageDelayMs?: number;
  /** Close with 1011 after this long without audio or a text message, like the real NET-0001. Default 10 000 ms. */
  idleTimeoutMs?: number;
  /**
   * Text for a segment of one connection (`index` counts from 1 per connection; `durationMs` is the
   * speech so far). When set it replaces the script, so that an offline stand-in can say what it heard
   * without pretending to recognise words.
   */
  transcribe?: (segment: { index: number; durationMs: number }) => string;
  /**
   * Text of the `count`-th interim result (from 1) of a segment whose final text will be `text`. Default:
   * its first `count` words. A recogniser that revises its guesses, not only extends them, can be
   * scripted with it.
   */
  interim?: (segment: { index: number; count: number; text: string }) => string;
}

/** Failure injected into an upcoming connection. */
export type DeepgramFailure =
  /** Refuse the upgrade with this HTTP status and Deepgram's JSON error body. */
  | { kind: 'reject'; status: number }
  /** Accept the TCP connection and never answer the upgrade. */
  | { kind: 'hang' }
  /**
   * Open normally, then destroy the socket without a close frame (the client sees 1006) once any
   * given threshold is reached: wall time since open, messages sent, or audio received.
   */
  | { kind: 'drop'; afterMs?: number; afterMessages?: number; afterAudioMs?: number };

/** What the server saw on one connection, for assertions. */
export interface DeepgramConnectionRecord {
  /** Path and query string of the upgrade request. */
  url: string;
  /** Query parameters (last value wins for repeated keys). */
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** Total linear16 audio bytes received. */
  audioBytes: number;
  /** Every JSON text message received, in order. */
  controlMessages: Array<{ type: string; [k: string]: unknown }>;
  /** Every JSON message sent, in order. */
  sentMessages: Array<{ type: string; [k: string]: unknown }>;
  /** How it ended: `client` close frame, `server` close (CloseStream/idle), injected `drop`, or still `open`. */
  state: 'open' | 'client' | 'server' | 'drop';
  closeCode: number | undefined;
}

interface Segment {
  startSample: number;
  lastSpeechEndSample: number;
  lastInterimSample: number;
  interimCount: number;
}

const MODEL_INFO = { name: '2-general-nova', version: '2024-01-18.26916', arch: 'nova-3' };
const MODEL_UUID = 'c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c';

export class DeepgramFakeServer {
  /** `ws://127.0.0.1:<port>`: pass as the SDK's `baseUrl`. */
  readonly url: string;
  readonly port: number;
  /** One record per accepted WebSocket, in order of arrival. */
  readonly connections: DeepgramConnectionRecord[] = [];
  /** Upgrade attempts, including refused and hung ones. */
  upgradeAttempts = 0;

  private readonly http: Server;
  private readonly tracker: SocketTracker;
  private readonly wss: WsServer;
  private readonly options: Required<Omit<DeepgramFakeOptions, 'apiKey' | 'transcribe' | 'interim'>> & { apiKey: string | undefined };
  private readonly transcribe: DeepgramFakeOptions['transcribe'];
  /** Interim text (the `interim` option); read for every interim result, so a test may set it. */
  interim: DeepgramFakeOptions['interim'];
  private readonly failures = new FailurePlan<DeepgramFailure>();
  private readonly live = new Set<LiveConnection>();
  private script: string[] = [];
  private finalSegments = 0;
  private down = false;

  private constructor(http: Server, tracker: SocketTracker, port: number, options: DeepgramFakeOptions) {
    this.http = http;
    this.tracker = tracker;
    this.port = port;
    this.url = `ws://127.0.0.1:${port}`;
    this.options = {
      apiKey: options.apiKey,
      endpointingMs: options.endpointingMs ?? 300,
      interimIntervalMs: options.interimIntervalMs ?? 200,
      speechRms: options.speechRms ?? 400,
      minSpeechMs: options.minSpeechMs ?? 30,
      openDelayMs: options.openDelayMs ?? 0,
      messageDelayMs: options.messageDelayMs ?? 0,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
    };
    this.transcribe = options.transcribe;
    this.interim = options.interim;
    this.wss = new WebSocketServer({ noServer: true });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    http.on('request', (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ err_code: 'NOT_FOUND', err_msg: 'The fake serves only the live WebSocket.' }));
    });
  }

  static async start(options: DeepgramFakeOptions = {}): Promise<DeepgramFakeServer> {
    const http = createServer();
    const tracker = new SocketTracker();
    tracker.attach(http);
    const port = await listenLoopback(http);
    return new DeepgramFakeServer(http, tracker, port, options);
  }

  /** Transcripts for the coming segments, in order; after it runs out: `utterance <n>`. Resets the count. */
  setScript(texts: string[]): void {
    this.script = [...texts];
    this.finalSegments = 0;
  }

  /** Apply `failure` to the next `count` connection attempts. */
  failNext(failure: DeepgramFailure, count = 1): void {
    this.failures.add(failure, count);
  }

  /**
   * A service outage: while down, every open connection is gone (dropped without a close frame when
   * the outage starts) and every upgrade is refused with 503. Injected failures wait until it is up.
   */
  setDown(down: boolean): void {
    this.down = down;
    if (down) this.dropAll();
  }

  /** Destroy every open connection now, without close frames. */
  dropAll(): void {
    for (const c of this.live) c.drop();
  }

  /** Destroy one open connection (by its record) now, without a close frame; the others stay up. */
  dropConnection(record: DeepgramConnectionRecord): boolean {
    for (const c of this.live) {
      if (c.serves(record)) {
        c.drop();
        return true;
      }
    }
    return false;
  }

  /** Number of final segments produced so far (across connections). */
  get finalCount(): number {
    return this.finalSegments;
  }

  async close(): Promise<void> {
    for (const c of this.live) c.drop();
    this.failures.clear();
    await closeServer(this.http, this.tracker);
    this.wss.close();
  }

  /** Text of the segment that will be finalised next. Peeking (not consuming) keeps a dropped segment's text for its replay. */
  textForNextFinal(): string {
    return this.script[this.finalSegments] ?? `utterance ${this.finalSegments + 1}`;
  }

  consumeFinal(): void {
    this.finalSegments++;
  }

  /** Text of a connection's segment: the `transcribe` option when given, else the shared script. */
  textForSegment(index: number, durationMs: number): string {
    return this.transcribe ? this.transcribe({ index, durationMs }) : this.textForNextFinal();
  }

  forget(c: LiveConnection): void {
    this.live.delete(c);
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.upgradeAttempts++;
    if (this.down) return refuse(socket, 503, 'SERVICE_UNAVAILABLE', 'Injected outage.');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const failure = this.failures.take();
    if (failure?.kind === 'hang') return; // the tracker destroys it on close()
    await delay(this.options.openDelayMs);
    if (url.pathname !== '/v1/listen') return refuse(socket, 404, 'NOT_FOUND', `No route ${url.pathname}`);
    if (this.options.apiKey !== undefined && req.headers.authorization !== `Token ${this.options.apiKey}`) {
      return refuse(socket, 401, 'INVALID_AUTH', 'Invalid credentials.');
    }
    if (failure?.kind === 'reject') return refuse(socket, failure.status, 'INJECTED', 'Injected failure.');
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const record: DeepgramConnectionRecord = {
        url: req.url ?? '',
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        audioBytes: 0,
        controlMessages: [],
        sentMessages: [],
        state: 'open',
        closeCode: undefined,
      };
      this.connections.push(record);
      const conn = new LiveConnection(this, ws, record, this.options, failure?.kind === 'drop' ? failure : undefined);
      this.live.add(conn);
    });
  }
}

function refuse(socket: Duplex, status: number, errCode: string, message: string): void {
  const body = JSON.stringify({ err_code: errCode, err_msg: message, request_id: randomUUID() });
  socket.end(
    `HTTP/1.1 ${status} Error\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `dg-error: ${message}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** One open WebSocket: audio clock, energy-based segmentation, result messages. */
class LiveConnection {
  private readonly server: DeepgramFakeServer;
  private readonly ws: WsSocket;
  private readonly record: DeepgramConnectionRecord;
  private readonly requestId = randomUUID();
  private readonly sampleRate: number;
  private readonly frameSamples: number;
  private readonly endpointingSamples: number | undefined;
  private readonly interimSamples: number;
  private readonly minSpeechFrames: number;
  private readonly speechRms: number;
  private readonly interimResults: boolean;
  private readonly vadEvents: boolean;
  private readonly utteranceEndSamples: number | undefined;
  private readonly messageDelayMs: number;
  private readonly idleTimeoutMs: number;
  private readonly dropPlan: { afterMs?: number; afterMessages?: number; afterAudioMs?: number } | undefined;
  /** Received samples not yet making up a whole 10 ms frame. */
  private pending = new Int16Array(0);
  /** A byte left over when a message ended in the middle of a sample. */
  private oddByte: number | undefined;
  private samplesProcessed = 0;
  /** Where the next result window starts: the end of the previous final. */
  private windowStartSample = 0;
  private speechRunFrames = 0;
  private segment: Segment | undefined;
  /** Final segments of this connection so far. */
  private finals = 0;
  private lastWordEndSample: number | undefined;
  private sendChain: Promise<void> = Promise.resolve();
  private sentCount = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private dropTimer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    server: DeepgramFakeServer,
    ws: WsSocket,
    record: DeepgramConnectionRecord,
    options: Required<Omit<DeepgramFakeOptions, 'apiKey' | 'transcribe' | 'interim'>>,
    dropPlan: { afterMs?: number; afterMessages?: number; afterAudioMs?: number } | undefined,
  ) {
    this.server = server;
    this.ws = ws;
    this.record = record;
    const q = record.query;
    this.sampleRate = Number(q.sample_rate ?? 16000);
    this.frameSamples = Math.max(1, Math.round(this.sampleRate / 100));
    const endpointing = q.endpointing === 'false' ? undefined : Number(q.endpointing ?? options.endpointingMs);
    this.endpointingSamples = endpointing === undefined || Number.isNaN(endpointing) ? undefined : (endpointing * this.sampleRate) / 1000;
    this.interimSamples = (options.interimIntervalMs * this.sampleRate) / 1000;
    this.minSpeechFrames = Math.max(1, Math.round(options.minSpeechMs / 10));
    this.speechRms = options.speechRms;
    this.interimResults = q.interim_results === 'true';
    this.vadEvents = q.vad_events === 'true';
    // Deepgram finds the gap from its interim and final results, so `utterance_end_ms` works only with them.
    this.utteranceEndSamples = q.utterance_end_ms === undefined || !this.interimResults ? undefined : (Number(q.utterance_end_ms) * this.sampleRate) / 1000;
    this.messageDelayMs = options.messageDelayMs;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.dropPlan = dropPlan;

    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', (code: number) => this.onClosed(code));
    ws.on('error', () => {});
    if (dropPlan?.afterMs !== undefined) this.dropTimer = setTimeout(() => this.drop(), dropPlan.afterMs);
    this.armIdleTimer();
    // The real service announces the request before any result.
    this.send({
      type: 'Metadata',
      transaction_key: 'deprecated',
      request_id: this.requestId,
      sha256: '',
      created: new Date().toISOString(),
      duration: 0,
      channels: 1,
    });
  }

  serves(record: DeepgramConnectionRecord): boolean {
    return this.record === record;
  }

  /** Injected network failure: no close frame, so the client sees an abnormal closure (1006). */
  drop(): void {
    if (this.ended) return;
    this.record.state = 'drop';
    this.end();
    this.ws.terminate();
  }

  private end(): void {
    this.ended = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.dropTimer);
    this.server.forget(this);
  }

  private onClosed(code: number): void {
    if (this.record.state === 'open') this.record.state = 'client';
    this.record.closeCode = code;
    this.end();
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.ended) return;
      this.record.state = 'server';
      this.end();
      this.ws.close(
        1011,
        'Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001',
      );
    }, this.idleTimeoutMs);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    this.armIdleTimer();
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (!isBinary) {
      let msg: { type: string; [k: string]: unknown };
      try {
        msg = JSON.parse(bytes.toString('utf8'));
      } catch {
        this.record.state = 'server';
        this.end();
        this.ws.close(1008, 'Invalid JSON in text message');
        return;
      }
      this.record.controlMessages.push(msg);
      if (msg.type === 'Finalize') this.finalize(true);
      else if (msg.type === 'CloseStream') this.closeStream();
      return;
    }
    this.record.audioBytes += bytes.length;
    this.ingest(bytes);
    const afterAudioMs = this.dropPlan?.afterAudioMs;
    if (afterAudioMs !== undefined && (this.record.audioBytes / 2 / this.sampleRate) * 1000 >= afterAudioMs) this.drop();
  }

  private ingest(bytes: Buffer): void {
    let data = bytes;
    if (this.oddByte !== undefined) {
      data = Buffer.concat([Buffer.of(this.oddByte), bytes]);
      this.oddByte = undefined;
    }
    const whole = data.length >> 1;
    if (whole * 2 < data.length) this.oddByte = data[data.length - 1];
    const samples = new Int16Array(this.pending.length + whole);
    samples.set(this.pending);
    // Byte copy into the (aligned) array rather than readInt16LE per sample: the product's offline
    // stand-in sees 48 000 samples a second per call. Little-endian hosts only, like the wire format.
    new Uint8Array(samples.buffer, this.pending.length * 2, whole * 2).set(data.subarray(0, whole * 2));
    let offset = 0;
    while (offset + this.frameSamples <= samples.length && !this.ended) {
      this.processFrame(samples.subarray(offset, offset + this.frameSamples));
      offset += this.frameSamples;
    }
    this.pending = samples.slice(offset);
  }

  private processFrame(frame: Int16Array): void {
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += frame[i] * frame[i];
    const isSpeech = Math.sqrt(sum / frame.length) > this.speechRms;
    const frameEnd = this.samplesProcessed + frame.length;
    this.samplesProcessed = frameEnd;

    if (this.segment === undefined) {
      this.speechRunFrames = isSpeech ? this.speechRunFrames + 1 : 0;
      if (this.speechRunFrames >= this.minSpeechFrames) {
        const startSample = frameEnd - this.speechRunFrames * this.frameSamples;
        this.segment = { startSample, lastSpeechEndSample: frameEnd, lastInterimSample: frameEnd, interimCount: 0 };
        this.speechRunFrames = 0;
        if (this.vadEvents) this.send({ type: 'SpeechStarted', channel: [0], timestamp: startSample / this.sampleRate });
      } else if (
        this.utteranceEndSamples !== undefined &&
        this.lastWordEndSample !== undefined &&
        frameEnd - this.lastWordEndSample >= this.utteranceEndSamples
      ) {
        this.send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: this.lastWordEndSample / this.sampleRate });
        this.lastWordEndSample = undefined;
      }
      return;
    }
    const seg = this.segment;
    if (isSpeech) seg.lastSpeechEndSample = frameEnd;
    if (this.endpointingSamples !== undefined && frameEnd - seg.lastSpeechEndSample >= this.endpointingSamples) {
      this.emitFinal(false, true);
      return;
    }
    if (this.interimResults && frameEnd - seg.lastInterimSample >= this.interimSamples) {
      seg.lastInterimSample = frameEnd;
      seg.interimCount++;
      const text = this.segmentText(seg);
      const words = text.split(/\s+/).filter(Boolean);
      const interim = this.server.interim;
      const shown = interim
        ? interim({ index: this.finals + 1, count: seg.interimCount, text }).split(/\s+/).filter(Boolean)
        : words.slice(0, Math.min(words.length, seg.interimCount));
      this.send(this.results(shown, seg.startSample, seg.lastSpeechEndSample, { isFinal: false, speechFinal: false }));
    }
  }

  /** Finalize: flush the open segment, or answer with an empty final when there is none. */
  private finalize(fromFinalize: boolean): void {
    if (this.segment !== undefined) {
      this.emitFinal(fromFinalize, true);
      return;
    }
    this.send(this.results([], this.samplesProcessed, this.samplesProcessed, { isFinal: true, speechFinal: false, fromFinalize }));
    this.windowStartSample = this.samplesProcessed;
  }

  private emitFinal(fromFinalize: boolean, speechFinal: boolean): void {
    const seg = this.segment;
    if (seg === undefined) return;
    const words = this.segmentText(seg).split(/\s+/).filter(Boolean);
    this.finals++;
    this.server.consumeFinal();
    this.send(this.results(words, seg.startSample, seg.lastSpeechEndSample, { isFinal: true, speechFinal, fromFinalize }));
    this.lastWordEndSample = seg.lastSpeechEndSample;
    this.windowStartSample = this.samplesProcessed;
    this.segment = undefined;
  }

  private segmentText(seg: Segment): string {
    return this.server.textForSegment(this.finals + 1, ((seg.lastSpeechEndSample - seg.startSample) * 1000) / this.sampleRate);
  }

  private closeStream(): void {
    this.finalize(false);
    this.send({
      type: 'Metadata',
      transaction_key: 'deprecated',
      request_id: this.requestId,
      sha256: '',
      created: new Date().toISOString(),
      duration: this.samplesProcessed / this.sampleRate,
      channels: 1,
      models: [MODEL_UUID],
      model_info: { [MODEL_UUID]: MODEL_INFO },
    });
    this.record.state = 'server';
    this.end();
    // Closing after the queued sends keeps "results, then Metadata, then close" ordering under latency.
    this.sendChain = this.sendChain.then(() => this.ws.close(1000));
  }

  /** A `Results` message whose words are spread evenly over the speech they stand for. */
  private results(
    words: string[],
    speechStartSample: number,
    speechEndSample: number,
    flags: { isFinal: boolean; speechFinal: boolean; fromFinalize?: boolean },
  ): Record<string, unknown> & { type: string } {
    const sr = this.sampleRate;
    const wordSamples = words.length > 0 ? (speechEndSample - speechStartSample) / words.length : 0;
    const wordItems = words.map((w, i) => ({
      word: w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, ''),
      start: (speechStartSample + i * wordSamples) / sr,
      end: (speechStartSample + (i + 1) * wordSamples) / sr,
      confidence: 0.98,
      punctuated_word: w,
    }));
    const message: Record<string, unknown> & { type: string } = {
      type: 'Results',
      channel_index: [0, 1],
      duration: (this.samplesProcessed - this.windowStartSample) / sr,
      start: this.windowStartSample / sr,
      is_final: flags.isFinal,
      speech_final: flags.speechFinal,
      channel: { alternatives: [{ transcript: words.join(' '), confidence: words.length > 0 ? 0.98 : 0, words: wordItems }] },
      metadata: { request_id: this.requestId, model_info: MODEL_INFO, model_uuid: MODEL_UUID },
    };
    if (flags.fromFinalize) message.from_finalize = true;
    return message;
  }

  private send(message: Record<string, unknown> & { type: string }): void {
    if (this.ended) return;
    const text = JSON.stringify(message);
    this.sendChain = this.sendChain
      .then(() => delay(this.messageDelayMs))
      .then(() => {
        if (this.ws.readyState !== this.ws.OPEN || this.record.state === 'drop') return;
        this.record.sentMessages.push(message);
        this.ws.send(text);
        this.sentCount++;
        const afterMessages = this.dropPlan?.afterMessages;
        if (afterMessages !== undefined && this.sentCount >= afterMessages) this.drop();
      });
  }
}
