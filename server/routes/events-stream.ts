import { setTimeout as sleep } from 'node:timers/promises';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { EngineEvent } from '../../engine/events.ts';
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
/**
 * How long a resume waits for the store to hold what the client missed (the outbox catching up, or the
 * store coming back) before it sends a `reset` instead.
 */
export const REPLAY_CATCH_UP_MS = 2000;
/** Pause between two store reads while waiting. */
export const REPLAY_RETRY_MS = 100;

const SseHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^\\d{1,15}$', description: 'Resume after this seq' })),
});
const StreamQuery = Type.Object(
  { afterSeq: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Resume after this seq' })) },
  { additionalProperties: false },
);

/**
 * Why a stream could not be contiguous: the store did not answer; it answered but the outbox had not
 * written the missing events yet within `REPLAY_CATCH_UP_MS`; or they are nowhere (lost).
 */
export type ResetReason = 'store_unavailable' | 'store_behind' | 'events_missing';

/**
 * Sent instead of a silent gap (SSE `event: reset` with this JSON as data, no `id:`; the same JSON as a
 * WebSocket message). Events after the client's position and before `fromSeq` were not sent: the client
 * drops what it derived from the stream, re-reads the call (`GET /v1/calls/:id`) and, for the full event
 * history, reconnects from the start once the store is back. The stream goes on from `fromSeq`.
 */
export interface StreamReset {
  type: 'reset';
  callId: string;
  reason: ResetReason;
  fromSeq: number;
}

export function formatSse(event: EngineEvent): string {
  // JSON never contains a raw newline, so one `data:` line is enough; the type is sanitised the same way.
  return `id: ${event.seq}\nevent: ${event.type.replace(/[\r\n]/g, ' ')}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** No `id:`: the client's Last-Event-ID stays at what it really has until the next event. */
export function formatSseReset(reset: StreamReset): string {
  return `event: reset\ndata: ${JSON.stringify(reset)}\n\n`;
}

/** The part of a `ws` WebSocket used here (`@types/ws` is not installed). */
interface EventSocket {
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code: number, reason: string): void;
  on(event: 'close' | 'message', listener: () => void): void;
}

interface Sink {
  /** Each returns how many bytes are waiting to be sent to this subscriber. */
  write(event: EngineEvent): number;
  reset(reset: StreamReset): number;
  close(reason: string): void;
}

/** Every stored event of the call after `afterSeq`, page by page. */
async function readStored(ctx: AppContext, callId: string, afterSeq: number): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  for (let cursor = afterSeq; ; ) {
    const page = await ctx.store.listEvents(callId, { afterSeq: cursor, limit: MAX_LIST_LIMIT });
    out.push(...page);
    if (page.length < MAX_LIST_LIMIT) return out;
    cursor = page[page.length - 1].seq;
  }
}

/** One event per seq, in seq order. */
function bySeq(...sources: EngineEvent[][]): EngineEvent[] {
  const events = new Map<number, EngineEvent>();
  for (const source of sources) for (const event of source) if (!events.has(event.seq)) events.set(event.seq, event);
  return [...events.values()].sort((a, b) => a.seq - b.seq);
}

/** Whether `events` (in seq order) do not run afterSeq+1, afterSeq+2, ... */
function hasGap(events: EngineEvent[], afterSeq: number): boolean {
  return events.some((event, i) => event.seq !== afterSeq + 1 + i);
}

/**
 * Replays the call's events after `afterSeq` from the store, then from the in-memory recent buffer (which
 * covers what the outbox has not written yet), then live; every event once, in seq order. The engine
 * numbers a call's events 1, 2, 3, ..., so a hole is visible: while the store is down or behind, the read
 * is retried for up to `REPLAY_CATCH_UP_MS`; a hole still there then, or one in the live flow, is sent as
 * an explicit `reset`, never skipped silently. Returns the function that stops the stream.
 */
async function streamEvents(ctx: AppContext, callId: string, afterSeq: number, sink: Sink, log: FastifyBaseLogger): Promise<() => void> {
  // Seqs start at 1: a client without a position expects seq 1 first.
  let lastSeq = Math.max(afterSeq, 0);
  let live = false;
  let stopped = false;
  const pending: EngineEvent[] = [];

  const stop = (reason: string): void => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    sink.close(reason);
  };
  const deliver = (event: EngineEvent, reason: ResetReason): void => {
    if (stopped || event.seq <= lastSeq) return;
    if (event.seq !== lastSeq + 1) {
      log.warn({ callId, afterSeq: lastSeq, fromSeq: event.seq, reason }, 'event stream reset: events between are not available');
      if (sink.reset({ type: 'reset', callId, reason, fromSeq: event.seq }) > MAX_BUFFERED_BYTES) return stop('subscriber too slow');
    }
    lastSeq = event.seq;
    if (sink.write(event) > MAX_BUFFERED_BYTES) stop('subscriber too slow');
  };
  const unsubscribe = ctx.hub.subscribe(callId, (event) => (live ? deliver(event, 'events_missing') : pending.push(event)));

  let stored: EngineEvent[] = [];
  let reason: ResetReason = 'events_missing';
  let warned = false;
  const deadline = Date.now() + REPLAY_CATCH_UP_MS;
  for (;;) {
    let storeFailed = false;
    try {
      stored = await readStored(ctx, callId, lastSeq);
    } catch (err) {
      storeFailed = true;
      if (!warned) log.warn({ err, callId }, 'event replay from the store failed; retrying');
      warned = true;
    }
    if (stopped) return () => stop('client closed');
    const behind = ctx.outbox.backlog() > 0;
    reason = storeFailed ? 'store_unavailable' : behind ? 'store_behind' : 'events_missing';
    if (!hasGap(bySeq(stored, ctx.hub.recent(callId, lastSeq), pending), lastSeq)) break;
    // Only a store that failed or is still being written to can fill the hole; lost events never come.
    if ((!storeFailed && !behind) || Date.now() >= deadline) break;
    await sleep(REPLAY_RETRY_MS);
    if (stopped) return () => stop('client closed');
  }
  // Synchronously from here: nothing published in between can be missed or reordered.
  const backlog = bySeq(stored, ctx.hub.recent(callId, lastSeq), pending.splice(0));
  live = true;
  for (const event of backlog) deliver(event, reason);
  return () => stop('client closed');
}

/**
 * Live call events. `GET /v1/calls/:id/events` is Server-Sent Events (`id:` is the seq, so a reconnecting
 * EventSource resumes with `Last-Event-ID`); `GET /v1/calls/:id/events/ws` sends the same events as JSON
 * WebSocket messages and resumes with `?afterSeq=`. Both send a `StreamReset` where events are missing.
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
          200: {
            description: 'text/event-stream of EngineEvent JSON; `event: reset` (data `{ type, callId, reason, fromSeq }`) where events are missing',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
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
          reset: (reset) => {
            raw.write(formatSseReset(reset));
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
          reset: (reset) => {
            socket.send(JSON.stringify(reset));
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
