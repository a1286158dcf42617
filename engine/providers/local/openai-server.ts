import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { closeServer, delay, FailurePlan, listenLoopback, SocketTracker } from './net.ts';

/**
 * A local stand-in for OpenAI's Chat Completions API (`POST /v1/chat/completions`), streaming
 * (`stream: true`: server-sent events of `chat.completion.chunk` objects, then `data: [DONE]`) and
 * not, with the same JSON shapes, `Authorization: Bearer` check and error bodies as the real service.
 * Replies come from a responder function of the request, with injectable latency and failures.
 */

/** An OpenAI wire-format message as the SDK sends it. */
export interface WireMessage {
  role: string;
  content?: string | null | Array<{ type: string; text?: string }>;
  tool_call_id?: string;
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
}

export interface WireTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: object };
}

/** What the fake should answer: text, tool calls, or both. */
export interface FakeReply {
  text?: string;
  toolCalls?: Array<{ name: string; arguments: object | string }>;
}

export type Responder = (request: { model: string; messages: WireMessage[]; tools: WireTool[] }) => FakeReply;

/** Failure injected into an upcoming request. */
export type OpenAiFailure =
  /** Answer with this status and OpenAI's JSON error body. */
  | { kind: 'status'; status: number }
  /** Accept the request and never answer (for first-token timeouts). */
  | { kind: 'hang' }
  /** Send this many SSE events (the first carries only the role), then go silent without ending the response. */
  | { kind: 'stall'; afterChunks: number }
  /** Send this many SSE events, then destroy the connection. */
  | { kind: 'drop'; afterChunks: number };

export interface OpenAiFakeOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>`, else 401. */
  apiKey?: string;
  /** Delay before the response headers (time to first byte). Default 0. */
  firstChunkDelayMs?: number;
  /** Delay between streamed chunks. Default 0. */
  chunkDelayMs?: number;
  responder?: Responder;
}

/** One request as received, for assertions. */
export interface OpenAiRequestRecord {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** Parsed JSON body. */
  body: { model: string; messages: WireMessage[]; tools?: WireTool[]; stream?: boolean; [k: string]: unknown };
  /** Set once the client went away before the response finished (abort, timeout). */
  clientAborted: boolean;
  /** Set once the whole response was written. */
  responseFinished: boolean;
}

function contentText(content: WireMessage['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => p.text ?? '').join('');
  return '';
}

/**
 * Default replies: a few short sentences echoing the last user text; a `transfer_to_human` call when
 * the user asks for a human and that tool is offered.
 */
export const defaultResponder: Responder = ({ messages, tools }) => {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const said = contentText(lastUser?.content).trim();
  if (/\bhuman\b/i.test(said) && tools.some((t) => t.function.name === 'transfer_to_human')) {
    return { toolCalls: [{ name: 'transfer_to_human', arguments: { reason: said } }] };
  }
  return { text: `You said: ${said || 'nothing'}. I can help with that. Is there anything else you need?` };
};

/** Split text the way a model streams it: word-sized tokens keeping their leading space. */
export function tokenize(text: string): string[] {
  return text.match(/\s*[^\s.,!?;:]+|\s*[.,!?;:]+/g) ?? [];
}

export class OpenAiFakeServer {
  /** `http://127.0.0.1:<port>/v1`: pass as the SDK's `baseURL`. */
  readonly baseUrl: string;
  readonly port: number;
  readonly requests: OpenAiRequestRecord[] = [];
  responder: Responder;
  firstChunkDelayMs: number;
  chunkDelayMs: number;

  private readonly http: Server;
  private readonly tracker: SocketTracker;
  private readonly apiKey: string | undefined;
  private readonly failures = new FailurePlan<OpenAiFailure>();

  private constructor(http: Server, tracker: SocketTracker, port: number, options: OpenAiFakeOptions) {
    this.http = http;
    this.tracker = tracker;
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}/v1`;
    this.apiKey = options.apiKey;
    this.responder = options.responder ?? defaultResponder;
    this.firstChunkDelayMs = options.firstChunkDelayMs ?? 0;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
    http.on('request', (req, res) => void this.handle(req, res));
  }

  static async start(options: OpenAiFakeOptions = {}): Promise<OpenAiFakeServer> {
    const http = createServer();
    const tracker = new SocketTracker();
    tracker.attach(http);
    const port = await listenLoopback(http);
    return new OpenAiFakeServer(http, tracker, port, options);
  }

  /** Apply `failure` to the next `count` requests. */
  failNext(failure: OpenAiFailure, count = 1): void {
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
    let body: OpenAiRequestRecord['body'];
    try {
      body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : ({} as OpenAiRequestRecord['body']);
    } catch {
      return sendError(res, 400, 'invalid_request_error', 'We could not parse the JSON body of your request.');
    }
    const record: OpenAiRequestRecord = { method: req.method ?? '', path: url.pathname, headers: req.headers, body, clientAborted: false, responseFinished: false };
    this.requests.push(record);
    res.on('finish', () => (record.responseFinished = true));
    res.on('close', () => {
      if (!res.writableFinished) record.clientAborted = true;
    });

    if (req.method !== 'POST' || url.pathname !== '/v1/chat/completions') {
      return sendError(res, 404, 'invalid_request_error', `Invalid URL (${req.method} ${url.pathname})`);
    }
    if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return sendError(res, 401, 'invalid_request_error', 'Incorrect API key provided.', 'invalid_api_key');
    }
    const failure = this.failures.take();
    if (failure?.kind === 'hang') return; // never answers; close() destroys the socket
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      await delay(this.firstChunkDelayMs, abort.signal);
    } catch {
      return;
    }
    if (failure?.kind === 'status') {
      return sendError(res, failure.status, failure.status >= 500 ? 'server_error' : 'invalid_request_error', 'Injected failure.');
    }
    if (!Array.isArray(body.messages)) return sendError(res, 400, 'invalid_request_error', "Missing required parameter: 'messages'.");

    const reply = this.responder({ model: body.model, messages: body.messages, tools: body.tools ?? [] });
    const toolCalls = (reply.toolCalls ?? []).map((t) => ({
      id: `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
      type: 'function' as const,
      function: { name: t.name, arguments: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments) },
    }));
    const finishReason = toolCalls.length > 0 ? 'tool_calls' : 'stop';
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);

    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': `req_${randomUUID()}` });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          system_fingerprint: 'fp_fake',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: reply.text ?? null, refusal: null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
              logprobs: null,
              finish_reason: finishReason,
            },
          ],
          usage: { prompt_tokens: 10, completion_tokens: tokenize(reply.text ?? '').length, total_tokens: 10 + tokenize(reply.text ?? '').length },
        }),
      );
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': `req_${randomUUID()}` });
    const frame = (delta: object, finish: string | null): string =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        system_fingerprint: 'fp_fake',
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      })}\n\n`;
    // Content and tool-call argument pieces, in the order a model streams them.
    const events: string[] = [frame({ role: 'assistant', content: '', refusal: null }, null)];
    for (const token of tokenize(reply.text ?? '')) events.push(frame({ content: token }, null));
    toolCalls.forEach((call, index) => {
      events.push(frame({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }, null));
      // Arguments arrive in small pieces that are not valid JSON on their own.
      for (let i = 0; i < call.function.arguments.length; i += 7) {
        events.push(frame({ tool_calls: [{ index, function: { arguments: call.function.arguments.slice(i, i + 7) } }] }, null));
      }
    });
    events.push(frame({}, finishReason));
    events.push('data: [DONE]\n\n');

    let sentContent = 0;
    for (const event of events) {
      if (failure?.kind === 'stall' && sentContent >= failure.afterChunks) return; // silent forever
      if (failure?.kind === 'drop' && sentContent >= failure.afterChunks) {
        res.socket?.destroy();
        return;
      }
      try {
        if (sentContent > 0) await delay(this.chunkDelayMs, abort.signal);
      } catch {
        return;
      }
      res.write(event);
      sentContent++;
    }
    res.end();
  }
}

function sendError(res: ServerResponse, status: number, type: string, message: string, code: string | null = null): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `req_${randomUUID()}` });
  res.end(JSON.stringify({ error: { message, type, param: null, code } }));
}
