import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { BOT_IDENTITY_PREFIX } from '../engine/transport/bot-identity.ts';
import { ERROR_CATALOGUE } from './errors.ts';
import { TURN_RULES } from '../engine/events.ts';
import { MAX_DEPTH_KEYWORD, MAX_JSON_BYTES_KEYWORD } from './validation.ts';

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

/** Errors of a route that changes something: also 403 `VE_FORBIDDEN` for a read-only key. */
export const WRITE_ERRORS = [...COMMON_ERRORS, 403] as const;

/** Call ids are UUIDs minted here; the pattern keeps hostile ids out of room names and logs. */
export const CallId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Call id' });

/**
 * LiveKit identities end up in logs and room listings: a plain alphabet. Identities starting with
 * `BOT_IDENTITY_PREFIX` are the engine's bot's: a second participant with one would push the bot out.
 */
export const IDENTITY_PATTERN = `^(?!${BOT_IDENTITY_PREFIX.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})[A-Za-z0-9_.:@+-]{1,128}$`;

/** A participant identity given by a client. */
export function ParticipantIdentity(description: string) {
  return Type.String({
    pattern: IDENTITY_PATTERN,
    description: `${description}. 1-128 of A-Z a-z 0-9 _ . : @ + -; \`${BOT_IDENTITY_PREFIX}…\` is reserved for the engine's bot`,
  });
}

/** Opaque page cursor: base64url of what the store needs to continue (see `encodeCursor`). */
export const ListCursor = Type.String({
  minLength: 1,
  maxLength: 512,
  pattern: '^[A-Za-z0-9_-]+$',
  description: '`nextCursor` of the previous page, as given (base64url, opaque); one this API did not produce answers 400 `VE_STORE_INVALID_INPUT`',
});

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
  /** Which rule ended the caller's turn (see `TurnRule`: `model`, `silence`, `deadline_stt`, `deadline_silence`) and Smart Turn's probability. */
  smartTurn: Type.Optional(Type.Object({ rule: Type.Union(TURN_RULES.map((rule) => Type.Literal(rule))), probability: Type.Union([Type.Number(), Type.Null()]) })),
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

/** Objects and arrays nest at most this deep in a call's metadata, the metadata object itself being 1. */
export const MAX_METADATA_DEPTH = 8;
/** Largest metadata, serialised as JSON. Stored with every call and sent back with it. */
export const MAX_METADATA_BYTES = 8192;

/**
 * What Fastify's JSON parser refuses (400 `VE_BAD_JSON`) before validation, as schema keywords for every
 * object, so that the document accepts no body the parser refuses: a `__proto__` key, or a `constructor`
 * object with a `prototype` key (prototype poisoning).
 */
const NOT_PROTO_KEY = { not: { const: '__proto__' } };
const NOT_CONSTRUCTOR_PROTOTYPE = { not: { type: 'object', required: ['constructor'], properties: { constructor: { type: 'object', required: ['prototype'] } } } };

/**
 * A metadata value with `levels` more levels of nesting allowed. Each level is declared once, with an
 * `$id`, and referenced from the next, so the schema (and the OpenAPI document) grows linearly with the
 * depth instead of doubling per level; the innermost level takes scalars only.
 */
function metadataValue(levels: number): TSchema {
  const scalars = [Type.String(), Type.Number(), Type.Boolean(), Type.Null()];
  if (levels === 0) return Type.Union(scalars, { $id: 'CallMetadataValue0' });
  const inner = metadataValue(levels - 1);
  const object = Type.Unsafe({ type: 'object', propertyNames: NOT_PROTO_KEY, additionalProperties: inner, ...NOT_CONSTRUCTOR_PROTOTYPE });
  return Type.Union([...scalars, Type.Array(Type.Ref(inner.$id!)), object], { $id: `CallMetadataValue${levels}` });
}

/** `metadata` of `POST /v1/calls`: bounded in keys, depth and size, so that no request can make it costly. */
export const CallMetadata = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  // propertyNames rather than patternProperties: @fastify/swagger rewrites the latter to
  // additionalProperties, which would drop the key rule from the OpenAPI document.
  propertyNames: { type: 'string', pattern: `^(?!${INTERNAL_METADATA_PREFIX})[A-Za-z0-9_.-]{1,64}$`, ...NOT_PROTO_KEY },
  additionalProperties: metadataValue(MAX_METADATA_DEPTH - 1),
  maxProperties: 32,
  ...NOT_CONSTRUCTOR_PROTOTYPE,
  [MAX_DEPTH_KEYWORD]: MAX_METADATA_DEPTH,
  [MAX_JSON_BYTES_KEYWORD]: MAX_METADATA_BYTES,
  description:
    `Free data from the dispatch system, returned with the call: at most 32 keys (not starting with \`${INTERNAL_METADATA_PREFIX}\`), ` +
    `objects and arrays nested at most ${MAX_METADATA_DEPTH} levels deep counting this one (\`${MAX_DEPTH_KEYWORD}\`), ` +
    `at most ${MAX_METADATA_BYTES} bytes as JSON (\`${MAX_JSON_BYTES_KEYWORD}\`).`,
});
