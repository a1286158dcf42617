import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VoiceError } from '../engine/errors.ts';
import { ApiError, ERROR_CATALOGUE, toApiError } from './errors.ts';
import { ENGINE_ERROR_CATALOGUE, engineErrorCode } from '../engine/error-codes.ts';

const whole = readFileSync(new URL('./ERRORS.md', import.meta.url), 'utf8');
const ENGINE_SECTION = '## Engine errors in call events';
/** The control-plane part of ERRORS.md (responses), and the engine part (call events). */
const doc = whole.slice(0, whole.indexOf(ENGINE_SECTION));
const engineDoc = whole.slice(whole.indexOf(ENGINE_SECTION));

describe('error catalogue', () => {
  it('documents every code with its status in server/ERRORS.md', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, `${code} missing from ERRORS.md`).toBeDefined();
      expect(row!.split('|')[2].trim(), `${code} status in ERRORS.md`).toBe(String(entry.status));
    }
  });

  it('documents no code that the catalogue lacks', () => {
    const documented = [...doc.matchAll(/^\| `(VE_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.filter((code) => !(code in ERROR_CATALOGUE))).toEqual([]);
  });

  it('uses the VE_ prefix and an HTTP error status for every code', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      expect(code).toMatch(/^VE_[A-Z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
    }
  });
});

describe('engine error catalogue', () => {
  it('has a section in ERRORS.md', () => {
    expect(whole).toContain(ENGINE_SECTION);
  });

  it('documents every engine code with its stage, and no other', () => {
    for (const [code, entry] of Object.entries(ENGINE_ERROR_CATALOGUE)) {
      const row = engineDoc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, `${code} missing from the engine section of ERRORS.md`).toBeDefined();
      expect(row!.split('|')[2].trim(), `${code} stage in ERRORS.md`).toBe(entry.stage);
    }
    const documented = [...engineDoc.matchAll(/^\| `(VE_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.filter((code) => !(code in ENGINE_ERROR_CATALOGUE))).toEqual([]);
  });

  it('reports an uncatalogued engine error as VE_ENGINE_INTERNAL', () => {
    expect(engineErrorCode(new VoiceError('VE_LLM_TIMEOUT', 'slow'))).toBe('VE_LLM_TIMEOUT');
    expect(engineErrorCode(new VoiceError('VE_SOMETHING_NEW', 'x'))).toBe('VE_ENGINE_INTERNAL');
    expect(engineErrorCode(new Error('plain'))).toBe('VE_ENGINE_INTERNAL');
    expect(engineErrorCode(undefined)).toBe('VE_ENGINE_INTERNAL');
  });
});

describe('toApiError', () => {
  const fastifyError = (code: string, statusCode: number) => Object.assign(new Error(code), { code, statusCode });

  it.each([
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'VE_BODY_TOO_LARGE'],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'VE_UNSUPPORTED_MEDIA_TYPE'],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'VE_BAD_JSON'],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'VE_BAD_JSON'],
    ['FST_ERR_NOT_FOUND', 404, 'VE_NOT_FOUND'],
    ['FST_ERR_BAD_URL', 400, 'VE_BAD_REQUEST'],
    ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'VE_BAD_REQUEST'],
    ['SOMETHING_NEW', 429, 'VE_RATE_LIMITED'],
    ['SOMETHING_ELSE', 500, 'VE_INTERNAL'],
  ])('maps %s (%i) to %s', (code, status, expected) => {
    expect(toApiError(fastifyError(code, status)).code).toBe(expected);
  });

  it('maps schema validation errors to VE_VALIDATION', () => {
    const err = Object.assign(new Error('body must be object'), { validation: [{}], statusCode: 400 });
    expect(toApiError(err).code).toBe('VE_VALIDATION');
  });

  it('keeps catalogued VoiceErrors from other layers and hides uncatalogued ones', () => {
    const storeDown = new VoiceError('VE_STORE_UNAVAILABLE', 'db down', { status: 503, retryable: true });
    expect(toApiError(storeDown)).toMatchObject({ code: 'VE_STORE_UNAVAILABLE', status: 503 });
    const unknown = new VoiceError('VE_SOMETHING_PRIVATE', 'secret detail', { status: 500 });
    expect(toApiError(unknown)).toMatchObject({ code: 'VE_INTERNAL', status: 500 });
    expect(toApiError(unknown).message).not.toContain('secret');
  });

  it('never leaks the message of an unexpected error', () => {
    expect(toApiError(new TypeError('x is undefined at /src/secret.ts')).message).toBe(ERROR_CATALOGUE.VE_INTERNAL.message);
    expect(toApiError(undefined).code).toBe('VE_INTERNAL');
  });

  it('gives ApiError the catalogue status and default message', () => {
    const err = new ApiError('VE_AT_CAPACITY', undefined, { headers: { 'retry-after': '5' } });
    expect(err).toMatchObject({ status: 503, retryable: true, message: ERROR_CATALOGUE.VE_AT_CAPACITY.message });
    expect(err.headers).toEqual({ 'retry-after': '5' });
  });
});
