import { VoiceError } from '../engine/errors.ts';

/**
 * The catalogue of every error the control plane answers with. Each code is stable (clients match on it),
 * has one HTTP status and a default message; `server/ERRORS.md` documents every entry and
 * `errors.test.ts` fails when one is missing there.
 */
export const ERROR_CATALOGUE = {
  VE_BAD_REQUEST: { status: 400, retryable: false, message: 'The request could not be parsed' },
  VE_VALIDATION: { status: 400, retryable: false, message: 'The request does not match the schema' },
  VE_STORE_INVALID_INPUT: { status: 400, retryable: false, message: 'The input cannot be stored as given' },
  VE_BAD_JSON: { status: 400, retryable: false, message: 'The request body is not valid JSON' },
  VE_UNAUTHORIZED: { status: 401, retryable: false, message: 'Missing or invalid API key' },
  VE_WEBHOOK_SIGNATURE: { status: 401, retryable: false, message: 'Webhook signature is missing or invalid' },
  VE_FORBIDDEN: { status: 403, retryable: false, message: 'The API key lacks the scope this request needs' },
  VE_NOT_FOUND: { status: 404, retryable: false, message: 'No such route' },
  VE_CALL_NOT_FOUND: { status: 404, retryable: false, message: 'No such call' },
  VE_METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: 'This path does not accept this method' },
  VE_IDEMPOTENCY_MISMATCH: {
    status: 422,
    retryable: false,
    message: 'This Idempotency-Key was already used with a different request body',
  },
  VE_IDEMPOTENCY_IN_FLIGHT: {
    status: 409,
    retryable: true,
    message: 'A request with this Idempotency-Key is still being processed; retry',
  },
  VE_CALL_ENDED: { status: 409, retryable: false, message: 'The call has ended' },
  VE_RECORDING_ACTIVE: { status: 409, retryable: false, message: 'A recording is already running for this call' },
  VE_RECORDING_NOT_ACTIVE: { status: 409, retryable: false, message: 'No recording is running for this call' },
  VE_EGRESS_NOT_ACTIVE: { status: 409, retryable: false, message: 'No egress is running for this call' },
  VE_CALL_EXISTS: { status: 409, retryable: false, message: 'A call with this id already exists' },
  VE_CALL_STATE_CONFLICT: { status: 409, retryable: false, message: 'The call is not in a state that allows this' },
  VE_STORE_CONFLICT: { status: 409, retryable: true, message: 'The call changed concurrently; retry' },
  VE_WEBHOOK_REPLAY: { status: 409, retryable: false, message: 'This webhook event was already received' },
  VE_WEBHOOK_STALE: { status: 400, retryable: false, message: 'This webhook event is older than the replay window' },
  VE_BODY_TOO_LARGE: { status: 413, retryable: false, message: 'The request body is too large' },
  VE_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: 'Unsupported Content-Type' },
  VE_UPGRADE_REQUIRED: { status: 426, retryable: false, message: 'This endpoint only accepts WebSocket upgrades' },
  VE_RATE_LIMITED: { status: 429, retryable: true, message: 'Rate limit exceeded' },
  VE_INTERNAL: { status: 500, retryable: true, message: 'Internal error' },
  VE_LIVEKIT_UNAVAILABLE: { status: 502, retryable: true, message: 'The LiveKit server did not answer as expected' },
  VE_BOT_START_FAILED: { status: 502, retryable: true, message: 'The voice engine could not start the bot' },
  VE_ENGINE_FAILED: { status: 502, retryable: true, message: 'The voice engine failed the request' },
  VE_ENGINE_REMOTE: { status: 501, retryable: false, message: 'This action needs the engine in this process (the api role has none)' },
  VE_AT_CAPACITY: { status: 503, retryable: true, message: 'The engine is at capacity; retry later' },
  VE_EGRESS_UNAVAILABLE: { status: 503, retryable: true, message: 'The LiveKit egress service is unavailable' },
  VE_STORE_UNAVAILABLE: { status: 503, retryable: true, message: 'The call store is unavailable' },
  VE_NOT_READY: { status: 503, retryable: true, message: 'The service is not ready' },
  VE_CLOSED: { status: 503, retryable: true, message: 'The service is shutting down' },
  VE_CONFIG_INVALID: { status: 500, retryable: false, message: 'The configuration is invalid' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ApiErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error the REST layer answers with as `{ error: { code, message } }` and the catalogue's status. */
export class ApiError extends VoiceError {
  /** Sent as headers with the error response (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(code: ApiErrorCode, message?: string, options: { cause?: unknown; headers?: Record<string, string> } = {}) {
    const entry = ERROR_CATALOGUE[code];
    super(code, message ?? entry.message, { status: entry.status, retryable: entry.retryable, cause: options.cause });
    this.name = 'ApiError';
    this.headers = options.headers ?? {};
  }
}

export function isCatalogued(code: unknown): code is ApiErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The body of every error response. */
export interface ErrorBody {
  error: { code: ApiErrorCode; message: string };
}

/**
 * Maps anything thrown inside a request (our errors, Fastify's own `FST_ERR_*`, plugin errors, bugs) to a
 * catalogued code so that no client ever sees a framework code. Unknown 4xx become `VE_BAD_REQUEST`;
 * anything else is `VE_INTERNAL` with a generic message (details go to the log only).
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof VoiceError && isCatalogued(err.code)) return new ApiError(err.code, err.message, { cause: err });
  const e = (err ?? {}) as { code?: unknown; statusCode?: unknown; validation?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : undefined;
  if (e.validation !== undefined) return new ApiError('VE_VALIDATION', message, { cause: err });
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('VE_BODY_TOO_LARGE', undefined, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('VE_UNSUPPORTED_MEDIA_TYPE', message, { cause: err });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('VE_BAD_JSON', message, { cause: err });
    case 'FST_ERR_NOT_FOUND':
      return new ApiError('VE_NOT_FOUND', undefined, { cause: err });
    case 'FST_ERR_VALIDATION':
      return new ApiError('VE_VALIDATION', message, { cause: err });
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413) return new ApiError('VE_BODY_TOO_LARGE', undefined, { cause: err });
  if (status === 415) return new ApiError('VE_UNSUPPORTED_MEDIA_TYPE', undefined, { cause: err });
  if (status === 429) return new ApiError('VE_RATE_LIMITED', undefined, { cause: err });
  // Node's JSON.parse errors surface as a 400 SyntaxError from the content-type parser.
  if (err instanceof SyntaxError && status === 400) return new ApiError('VE_BAD_JSON', message, { cause: err });
  if (status >= 400 && status < 500) return new ApiError('VE_BAD_REQUEST', message, { cause: err });
  return new ApiError('VE_INTERNAL', undefined, { cause: err });
}

export function errorBody(err: ApiError): ErrorBody {
  return { error: { code: err.code as ApiErrorCode, message: err.message } };
}
