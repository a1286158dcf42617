import { describe, expect, it } from 'vitest';
import { VoiceError } from '../errors.ts';
import {
  isRetryableStatus,
  LlmFailedError,
  LlmTimeoutError,
  ProviderAbortedError,
  SttDisconnectedError,
  TtsFailedError,
} from './errors.ts';

describe('provider errors', () => {
  const cases: Array<[VoiceError, string, boolean]> = [
    [new SttDisconnectedError('x'), 'VE_STT_DISCONNECTED', true],
    [new LlmTimeoutError(100), 'VE_LLM_TIMEOUT', true],
    [new LlmFailedError('x', { retryable: false, upstreamStatus: 400 }), 'VE_LLM_FAILED', false],
    [new TtsFailedError('x', { retryable: true, upstreamStatus: 503 }), 'VE_TTS_FAILED', true],
    [new ProviderAbortedError('x'), 'VE_PROVIDER_ABORTED', false],
  ];

  it.each(cases)('%s has a stable VE_ code and retryability', (error, code, retryable) => {
    expect(error).toBeInstanceOf(VoiceError);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.name).not.toBe('VoiceError');
  });

  it('retries rate limits, timeouts, server faults and network faults only', () => {
    expect([undefined, 408, 409, 429, 500, 502, 503].map(isRetryableStatus)).toEqual(Array(7).fill(true));
    expect([400, 401, 403, 404, 422].map(isRetryableStatus)).toEqual(Array(5).fill(false));
  });
});
