import { VoiceError } from '../../engine/errors.ts';

/**
 * The database could not be reached or timed out. Retryable: the outbox backs off and retries these,
 * /readyz reports them, the REST layer answers 503.
 */
export class StoreUnavailableError extends VoiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VE_STORE_UNAVAILABLE', message, { status: 503, retryable: true, cause: options.cause });
    this.name = 'StoreUnavailableError';
  }
}

/** The input cannot be stored as given (missing id, bad timestamp, ...). Retrying will not help. */
export class StoreInvalidInputError extends VoiceError {
  constructor(message: string) {
    super('VE_STORE_INVALID_INPUT', message, { status: 400, retryable: false });
    this.name = 'StoreInvalidInputError';
  }
}

export class CallNotFoundError extends VoiceError {
  readonly callId: string;

  constructor(callId: string) {
    super('VE_CALL_NOT_FOUND', `call ${callId} not found`, { status: 404, retryable: false });
    this.name = 'CallNotFoundError';
    this.callId = callId;
  }
}

/** `createCall` without an idempotency key for a `callId` that already exists. */
export class CallExistsError extends VoiceError {
  readonly callId: string;

  constructor(callId: string) {
    super('VE_CALL_EXISTS', `call ${callId} already exists`, { status: 409, retryable: false });
    this.name = 'CallExistsError';
    this.callId = callId;
  }
}

/** `updateCall` with `ifState` found the call in another state. */
export class CallStateConflictError extends VoiceError {
  readonly callId: string;
  readonly actualState: string;

  constructor(callId: string, actualState: string, expected: readonly string[]) {
    super('VE_CALL_STATE_CONFLICT', `call ${callId} is ${actualState}, expected one of ${expected.join(', ')}`, {
      status: 409,
      retryable: false,
    });
    this.name = 'CallStateConflictError';
    this.callId = callId;
    this.actualState = actualState;
  }
}

/** A store kept losing the optimistic-concurrency race on one call (heavy concurrent updates). */
export class StoreConflictError extends VoiceError {
  constructor(callId: string) {
    super('VE_STORE_CONFLICT', `call ${callId} changed concurrently too many times; retry`, {
      status: 409,
      retryable: true,
    });
    this.name = 'StoreConflictError';
  }
}
