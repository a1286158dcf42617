/**
 * Every error the project throws across a module boundary is a VoiceError with a stable `code`
 * (prefix `VE_`), an HTTP status for when it crosses the REST boundary, and whether retrying may help.
 * Callers match on `code`, never on message text.
 */
export class VoiceError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { status?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VoiceError';
    this.code = code;
    this.status = options.status ?? 500;
    this.retryable = options.retryable ?? false;
  }
}

/** Thrown to reject pending work when the thing it was waiting on has closed. */
export class ClosedError extends VoiceError {
  constructor(what: string) {
    super('VE_CLOSED', `${what} is closed`, { status: 503, retryable: true });
    this.name = 'ClosedError';
  }
}
