import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ERROR_CATALOGUE } from './errors.ts';

/**
 * Schemas shared by several route plugins. Declared once with TypeBox: Fastify validates with them and
 * @fastify/swagger turns the same objects into the OpenAPI document.
 */

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(Object.keys(ERROR_CATALOGUE).map((code) => Type.Literal(code))),
      message: Type.String(),
    }),
  },
  { description: 'Every error response; `code` is one of server/ERRORS.md' },
);

/** Error responses for the given statuses, to merge into a route's `response` schema. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const status of statuses) out[status] = ErrorResponse;
  return out;
}

/** Errors any authenticated route may answer with. */
export const COMMON_ERRORS = [400, 401, 429, 500] as const;

/** Call ids are UUIDs minted here; the pattern keeps hostile ids out of room names and logs. */
export const CallId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Call id' });

export const CallIdParams = Type.Object({ id: CallId }, { additionalProperties: false });
export type CallIdParams = Static<typeof CallIdParams>;

export const CallState = Type.Union([Type.Literal('created'), Type.Literal('active'), Type.Literal('human'), Type.Literal('ended')]);
export const BotModeView = Type.Union([Type.Literal('active'), Type.Literal('transcriber'), Type.Literal('removed')]);

export const Participant = Type.Object({
  identity: Type.String(),
  role: Type.String(),
  joinedAt: Type.String({ format: 'date-time' }),
  leftAt: Type.Optional(Type.String({ format: 'date-time' })),
});

export const Latency = Type.Object({
  turnId: Type.String(),
  at: Type.String({ format: 'date-time' }),
  responseMs: Type.Optional(Type.Number()),
  stagesMs: Type.Optional(Type.Record(Type.String(), Type.Number())),
  /** Which rule ended the caller's turn (`model` or `silence`) and Smart Turn's probability. */
  smartTurn: Type.Optional(Type.Object({ rule: Type.Union([Type.Literal('model'), Type.Literal('silence')]), probability: Type.Union([Type.Number(), Type.Null()]) })),
});

export const Recording = Type.Object({
  status: Type.String(),
  egressId: Type.Optional(Type.String()),
  location: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String()),
  endedAt: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});

export const Segment = Type.Object({
  segmentId: Type.String(),
  seq: Type.Number(),
  speaker: Type.String(),
  text: Type.String(),
  startMs: Type.Number(),
  endMs: Type.Number(),
});

/** A call as the list endpoint shows it. */
export const CallSummary = Type.Object({
  callId: Type.String(),
  roomName: Type.String(),
  state: CallState,
  botMode: BotModeView,
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  endedAt: Type.Optional(Type.String({ format: 'date-time' })),
  endReason: Type.Optional(Type.String()),
  callerIdentity: Type.Optional(Type.String()),
  participants: Type.Array(Participant),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  recording: Type.Optional(Recording),
});

/** A call with its transcript and latencies (`GET /v1/calls/:id`). */
export const CallDetail = Type.Composite([
  CallSummary,
  Type.Object({ transcript: Type.Array(Segment), latencies: Type.Array(Latency) }),
]);

/** Metadata keys starting with this are the control plane's own bookkeeping and never shown to clients. */
export const INTERNAL_METADATA_PREFIX = '_ve';
