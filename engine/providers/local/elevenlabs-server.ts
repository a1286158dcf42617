import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { closeServer, delay, FailurePlan, listenLoopback, SocketTracker } from './net.ts';
import { synthesizeSpeech } from './speech.ts';

/**
 * A local stand-in for ElevenLabs text-to-speech: `POST /v1/text-to-speech/:voiceId/stream` and the
 * non-streaming `POST /v1/text-to-speech/:voiceId`, with `xi-api-key`, the `output_format` query
 * parameter and a JSON body `{ text, model_id, ... }` as the official SDK sends them. It answers with
 * raw 16-bit little-endian PCM of REAL speech of the text (espeak-ng, resampled by sox), sent in
 * chunks whose size is odd by default so that samples straddle chunk boundaries, as on the wire.
 */

const PCM_FORMATS: Record<string, number> = {
  pcm_8000: 8000,
  pcm_16000: 16000,
  pcm_22050: 22050,
  pcm_24000: 24000,
  pcm_32000: 32000,
  pcm_44100: 44100,
  pcm_48000: 48000,
};

/** Failure injected into an upcoming request. */
export type ElevenLabsFailure =
  | { kind: 'status'; status: number }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Send this many audio chunks, then go silent without ending the response. */
  | { kind: 'stall'; afterChunks: number }
  /** Send this many audio chunks, then destroy the connection. */
  | { kind: 'drop'; afterChunks: number };

export interface ElevenLabsFakeOptions {
  /** When set, requests must carry `xi-api-key: <apiKey>`, else 401. */
  apiKey?: string;
  /** Delay before the response headers (time to first byte). Default 0. */
  firstChunkDelayMs?: number;
  /** Delay between audio chunks. Default 0. */
  chunkDelayMs?: number;
  /** Bytes per streamed chunk. Default 3201: odd, so samples straddle chunk boundaries. */
  chunkBytes?: number;
}

export interface ElevenLabsRequestRecord {
  method: string;
  path: string;
  voiceId: string | undefined;
  streaming: boolean;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  body: { text?: string; model_id?: string; [k: string]: unknown };
  /** Audio bytes written before the response ended or the client left. */
  bytesSent: number;
  clientAborted: boolean;
}

export class ElevenLabsFakeServer {
  /** `http://127.0.0.1:<port>`: pass as the SDK's `baseUrl`. */
  readonly baseUrl: string;
  readonly port: number;
  readonly requests: ElevenLabsRequestRecord[] = [];
  firstChunkDelayMs: number;
  chunkDelayMs: number;
  chunkBytes: number;

  private readonly http: Server;
  private readonly tracker: SocketTracker;
  private readonly apiKey: string | undefined;
  private readonly failures = new FailurePlan<ElevenLabsFailure>();

  private constructor(http: Server, tracker: SocketTracker, port: number, options: ElevenLabsFakeOptions) {
    this.http = http;
    this.tracker = tracker;
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.apiKey = options.apiKey;
    this.firstChunkDelayMs = options.firstChunkDelayMs ?? 0;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
    this.chunkBytes = options.chunkBytes ?? 3201;
    http.on('request', (req, res) => void this.handle(req, res));
  }

  static async start(options: ElevenLabsFakeOptions = {}): Promise<ElevenLabsFakeServer> {
    const http = createServer();
    const tracker = new SocketTracker();
    tracker.attach(http);
    const port = await listenLoopback(http);
    return new ElevenLabsFakeServer(http, tracker, port, options);
  }

  /** Apply `failure` to the next `count` requests. */
  failNext(failure: ElevenLabsFailure, count = 1): void {
    this.failures.add(failure, count);
  }

  close(): Promise<void> {
    this.failures.clear();
    return closeServer(this.http, this.tracker);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/v1\/text-to-speech\/([^/]+)(\/stream)?$/.exec(url.pathname);
    let body: ElevenLabsRequestRecord['body'] = {};
    try {
      if (chunks.length > 0) body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return sendJson(res, 400, { detail: { status: 'invalid_json', message: 'Body is not valid JSON.' } });
    }
    const record: ElevenLabsRequestRecord = {
      method: req.method ?? '',
      path: url.pathname,
      voiceId: match ? decodeURIComponent(match[1]) : undefined,
      streaming: match?.[2] !== undefined,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      bytesSent: 0,
      clientAborted: false,
    };
    this.requests.push(record);
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) record.clientAborted = true;
      abort.abort();
    });

    if (req.method !== 'POST' || match === null) return sendJson(res, 404, { detail: 'Not Found' });
    if (this.apiKey !== undefined && req.headers['xi-api-key'] !== this.apiKey) {
      return sendJson(res, 401, { detail: { status: 'invalid_api_key', message: 'Invalid API key' } });
    }
    if (typeof body.text !== 'string' || body.text.length === 0) {
      return sendJson(res, 422, { detail: [{ loc: ['body', 'text'], msg: 'field required', type: 'value_error.missing' }] });
    }
    // The real default is MP3; only raw PCM is produced here.
    const format = record.query.output_format ?? 'mp3_44100_128';
    const sampleRate = PCM_FORMATS[format];
    if (sampleRate === undefined) {
      return sendJson(res, 400, { detail: { status: 'invalid_output_format', message: `The fake produces only pcm_* formats, not ${format}.` } });
    }
    const failure = this.failures.take();
    if (failure?.kind === 'hang') return;
    try {
      await delay(this.firstChunkDelayMs, abort.signal);
    } catch {
      return;
    }
    if (failure?.kind === 'status') {
      return sendJson(res, failure.status, { detail: { status: 'injected_failure', message: 'Injected failure.' } });
    }
    let audio: Buffer;
    try {
      const pcm = await synthesizeSpeech(body.text, sampleRate);
      audio = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    } catch (err) {
      return sendJson(res, 500, { detail: { status: 'synthesis_failed', message: (err as Error).message } });
    }
    res.writeHead(200, {
      'content-type': 'audio/pcm',
      'request-id': randomUUID(),
      'x-character-count': String(body.text.length),
    });
    if (!record.streaming) {
      record.bytesSent = audio.length;
      res.end(audio);
      return;
    }
    let sentChunks = 0;
    for (let offset = 0; offset < audio.length; offset += this.chunkBytes) {
      if (failure?.kind === 'stall' && sentChunks >= failure.afterChunks) return;
      if (failure?.kind === 'drop' && sentChunks >= failure.afterChunks) {
        res.socket?.destroy();
        return;
      }
      try {
        if (sentChunks > 0) await delay(this.chunkDelayMs, abort.signal);
      } catch {
        return;
      }
      const piece = audio.subarray(offset, offset + this.chunkBytes);
      res.write(piece);
      record.bytesSent += piece.length;
      sentChunks++;
    }
    res.end();
  }
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
