import { Type, type Static } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { EngineEvent } from '../call-engine.ts';
import { canSee, loadCall } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { COMMON_ERRORS, CallIdParams, errors } from '../schemas.ts';
import { MAX_LIST_LIMIT } from '../store/call-store.ts';

export interface EventsStreamOptions extends Record<string, unknown> {
  ctx: AppContext;
}

/** SSE comment sent this often so that proxies do not close an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** A subscriber this far behind is disconnected; it resumes with `Last-Event-ID` when it can keep up. */
export const MAX_BUFFERED_BYTES = 1024 * 1024;


const SseHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^\\d{1,15}$', description: 'Resume after this seq' })),
});
const StreamQuery = Type.Object(
  { afterSeq: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Resume after this seq' })) },
  { additionalProperties: false },
);

export function formatSse(event: EngineEvent): string {
  // JSON never contains a raw newline, so one `data:` line is enough; the type is sanitised the same way.
  return `id: ${event.seq}\nevent: ${event.type.replace(/[\r\n]/g, ' ')}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** The part of a `ws` WebSocket used here (`@types/ws` is not installed). */
interface EventSocket {
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code: number, reason: string): void;
  on(event: 'close' | 'message', listener: () => void): void;
}

interface Sink {
  /** Returns how many bytes are waiting to be sent to this subscriber. */
  write(event: EngineEvent): number;
  close(reason: string): void;
}

/**
 * Replays the call's events after `afterSeq` from the store, then from the in-memory recent buffer (which
 * covers what the outbox has not written yet), then live; every event is sent once, in seq order.
 * Returns the function that stops the stream.
 */
async function streamEvents(ctx: AppContext, callId: string, afterSeq: number, sink: Sink, log: FastifyBaseLogger): Promise<() => void> {
  let lastSeq = afterSeq;
  let replaying = true;
  let stopped = false;
  const pending: EngineEvent[] = [];

  const send = (event: EngineEvent): void => {
    if (stopped || event.seq <= lastSeq) return;
    lastSeq = event.seq;
    if (sink.write(event) > MAX_BUFFERED_BYTES) stop('subscriber too slow');
  };
  const unsubscribe = ctx.hub.subscribe(callId, (event) => (replaying ? pending.push(event) : send(event)));
  const stop = (reason: string): void => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    sink.close(reason);
  };

  const replay: EngineEvent[] = [];
  try {
    for (let cursor = afterSeq; !stopped; ) {
      const page = await ctx.store.listEvents(callId, { afterSeq: cursor, limit: MAX_LIST_LIMIT });
      replay.push(...page);
      if (page.length < MAX_LIST_LIMIT) break;
      cursor = page[page.length - 1].seq;
    }
  } catch (err) {
    // The store being down must not stop live events; what it holds is replayed on the next resume.
    log.warn({ err, callId }, 'event replay from the store failed');
  }
  replaying = false;
  const backlog = [...replay, ...ctx.hub.recent(callId, afterSeq), ...pending].sort((a, b) => a.seq - b.seq);
  for (const event of backlog) send(event);
  return () => stop('client closed');
}

/**
 * Live call events. `GET /v1/calls/:id/events` is Server-Sent Events (`id:` is the seq, so a reconnecting
 * EventSource resumes with `Last-Event-ID`); `GET /v1/calls/:id/events/ws` sends the same events as JSON
 * WebSocket messages and resumes with `?afterSeq=`.
 */
export async function eventsStreamRoutes(app: FastifyInstance, { ctx }: EventsStreamOptions): Promise<void> {
  app.get<{ Params: CallIdParams; Headers: Static<typeof SseHeaders>; Querystring: Static<typeof StreamQuery> }>(
    '/v1/calls/:id/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Call events as Server-Sent Events, resumable with Last-Event-ID',
        params: CallIdParams,
        headers: SseHeaders,
        querystring: StreamQuery,
        response: {
          200: { description: 'text/event-stream of EngineEvent JSON', content: { 'text/event-stream': { schema: Type.String() } } },
          ...errors(...COMMON_ERRORS, 404),
        },
      },
    },
    async (request, reply) => {
      const call = await loadCall(ctx.store, request.params.id, request.access);
      const header = request.headers['last-event-id'];
      const afterSeq = header !== undefined ? Number(header) : (request.query.afterSeq ?? -1);

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write(': stream start\n\n');
      const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
      heartbeat.unref();
      let stop: (() => void) | undefined;
      let closed = false;
      const onClose = (): void => {
        closed = true;
        clearInterval(heartbeat);
        stop?.();
      };
      request.raw.once('close', onClose);
      stop = await streamEvents(
        ctx,
        call.callId,
        afterSeq,
        {
          write: (event) => {
            raw.write(formatSse(event));
            return raw.writableLength;
          },
          close: () => {
            clearInterval(heartbeat);
            raw.end();
          },
        },
        request.log,
      );
      if (closed) stop();
    },
  );

  app.route<{ Params: CallIdParams; Querystring: Static<typeof StreamQuery> }>({
    method: 'GET',
    url: '/v1/calls/:id/events/ws',
    schema: {
      tags: ['events'],
      summary: 'Call events over a WebSocket (JSON messages), resumable with ?afterSeq=',
      params: CallIdParams,
      querystring: StreamQuery,
      response: { ...errors(...COMMON_ERRORS, 404, 426) },
    },
    // A plain GET (no Upgrade header) lands here.
    handler: async () => {
      throw new ApiError('VE_UPGRADE_REQUIRED');
    },
    // Runs after the onRequest hooks, so authentication and rate limits apply before the upgrade.
    wsHandler: async (socket: EventSocket, request) => {
      let stop: (() => void) | undefined;
      let closed = false;
      socket.on('close', () => {
        closed = true;
        stop?.();
      });
      // Clients only listen; anything they send is ignored.
      socket.on('message', () => {});
      const call = await ctx.store.getCall(request.params.id);
      // Another key's call closes the same way as a call that does not exist.
      if (call === null || request.access === undefined || !canSee(request.access, call)) {
        socket.close(4404, 'VE_CALL_NOT_FOUND');
        return;
      }
      stop = await streamEvents(
        ctx,
        call.callId,
        request.query.afterSeq ?? -1,
        {
          write: (event) => {
            socket.send(JSON.stringify(event));
            return socket.bufferedAmount;
          },
          close: (reason) => socket.close(reason === 'client closed' ? 1000 : 1013, reason),
        },
        request.log,
      );
      if (closed) stop();
    },
  });
}
