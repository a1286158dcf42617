import { VoiceError } from '../errors.ts';

/**
 * Errors raised by provider implementations. The engine matches on `code`; `retryable` says whether
 * opening a new stream or sending the same request again may succeed.
 */

/** The speech-to-text connection dropped and could not be re-established within the outage limit or retry budget. */
export class SttDisconnectedError extends VoiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VE_STT_DISCONNECTED', message, { status: 502, retryable: true, cause: options.cause });
    this.name = 'SttDisconnectedError';
  }
}

/**
 * The speech-to-text service cannot be reached at the moment: a reconnection attempt failed. The stream
 * keeps trying (with backoff) until its outage limit; until then nothing the caller says is recognised.
 */
export class SttUnavailableError extends VoiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VE_STT_UNAVAILABLE', message, { status: 503, retryable: true, cause: options.cause });
    this.name = 'SttUnavailableError';
  }
}

/** The language model produced no first token (or went silent) within the allowed time. */
export class LlmTimeoutError extends VoiceError {
  constructor(timeoutMs: number, options: { cause?: unknown } = {}) {
    super('VE_LLM_TIMEOUT', `language model did not respond within ${timeoutMs} ms`, {
      status: 504,
      retryable: true,
      cause: options.cause,
    });
    this.name = 'LlmTimeoutError';
  }
}

/** The language model request failed; `retryable` follows the HTTP status (429 and 5xx retry). */
export class LlmFailedError extends VoiceError {
  /** HTTP status of the upstream response, when there was one. */
  readonly upstreamStatus: number | undefined;

  constructor(message: string, options: { upstreamStatus?: number; retryable: boolean; cause?: unknown }) {
    super('VE_LLM_FAILED', message, { status: 502, retryable: options.retryable, cause: options.cause });
    this.name = 'LlmFailedError';
    this.upstreamStatus = options.upstreamStatus;
  }
}

/** The text-to-speech request failed; `retryable` follows the HTTP status (429 and 5xx retry). */
export class TtsFailedError extends VoiceError {
  /** HTTP status of the upstream response, when there was one. */
  readonly upstreamStatus: number | undefined;

  constructor(message: string, options: { upstreamStatus?: number; retryable: boolean; cause?: unknown }) {
    super('VE_TTS_FAILED', message, { status: 502, retryable: options.retryable, cause: options.cause });
    this.name = 'TtsFailedError';
    this.upstreamStatus = options.upstreamStatus;
  }
}

/**
 * The caller aborted the request through its AbortSignal. Thrown from the async iterators so that a
 * consumer can tell "cancelled" apart from "finished" (which ends with a `done` chunk or a normal return).
 */
export class ProviderAbortedError extends VoiceError {
  constructor(what: string, options: { cause?: unknown } = {}) {
    super('VE_PROVIDER_ABORTED', `${what} aborted`, { status: 499, retryable: false, cause: options.cause });
    this.name = 'ProviderAbortedError';
  }
}

/** Whether an upstream HTTP status is worth retrying (rate limits, timeouts and server faults). */
export function isRetryableStatus(status: number | undefined): boolean {
  if (status === undefined) return true; // no response at all: a network fault
  return status === 408 || status === 409 || status === 429 || status >= 500;
}
