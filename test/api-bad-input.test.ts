/**
 * Property-based hostile input: malformed and hostile requests for every endpoint (wrong types, missing
 * and unknown fields, huge bodies, bad or missing auth, forged webhooks, bad ids, odd content types and
 * URLs). Every answer must be a documented 4xx with `{ error: { code, message } }` and a catalogued code,
 * never a 5xx, and the server must keep serving good requests afterwards. And the OpenAPI document is
 * exact: a body its schema accepts, the server accepts, and one it refuses, the server refuses.
 */
import { request as httpRequest } from 'node:http';
import AjvCompiler from '@fastify/ajv-compiler';
import type { Ajv, ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../server/errors.ts';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { TEST_API_KEY, startHarness, type Harness } from '../server/testing/harness.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
let liveCallId: string;

beforeAll(async () => {
  livekit = await startLiveKitServer();
  h = await startHarness({ livekit, engine: new FakeEngine({ maxCalls: 100_000 }), env: { BODY_LIMIT_BYTES: '16384' } });
  const res = await h.api('/v1/calls', { method: 'POST', json: {} });
  liveCallId = ((await res.json()) as { callId: string }).callId;
});

afterAll(async () => {
  await h?.close();
  await livekit?.stop();
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Raw HTTP so that the test controls every byte (fetch would normalise paths and headers). */
function send(method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<RawResponse> {
  const url = new URL(h.baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

function expectDocumentedError(res: RawResponse, context: string): void {
  expect(res.status, `${context} -> ${res.status} ${res.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  expect(res.status, `${context} -> ${res.status} ${res.body.slice(0, 200)}`).toBeLessThan(500);
  const parsed = JSON.parse(res.body) as { error?: { code?: string; message?: unknown } };
  expect(Object.keys(parsed), context).toEqual(['error']);
  const code = parsed.error?.code ?? '';
  expect(Object.hasOwn(ERROR_CATALOGUE, code), `${context}: ${code} is not catalogued`).toBe(true);
  expect(ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].status, `${context}: status of ${code}`).toBe(res.status);
  expect(typeof parsed.error?.message, context).toBe('string');
}

const ENDPOINTS: { method: string; path: (id: string) => string }[] = [
  { method: 'POST', path: () => '/v1/calls' },
  { method: 'GET', path: () => '/v1/calls' },
  { method: 'GET', path: (id) => `/v1/calls/${id}` },
  { method: 'POST', path: (id) => `/v1/calls/${id}/end` },
  { method: 'POST', path: (id) => `/v1/calls/${id}/handoff` },
  { method: 'POST', path: (id) => `/v1/calls/${id}/say` },
  { method: 'POST', path: (id) => `/v1/calls/${id}/recording/start` },
  { method: 'POST', path: (id) => `/v1/calls/${id}/recording/stop` },
  { method: 'POST', path: (id) => `/v1/calls/${id}/egress` },
  { method: 'POST', path: () => '/v1/tokens' },
  { method: 'GET', path: (id) => `/v1/calls/${id}/events` },
  { method: 'GET', path: (id) => `/v1/calls/${id}/events/ws` },
];

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', ' ', '../../etc/passwd', '%00', '\u0000', '<script>', "' OR 1=1 --", '__proto__', 'constructor', '😀'.repeat(20), 'a'.repeat(5000)),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 5 }),
  fc.dictionary(hostileString, fc.oneof(fc.integer(), hostileString), { maxKeys: 4 }),
);
/** Bodies shaped like the real ones but with wrong types, unknown fields or missing ones. */
const hostileBody = fc.oneof(
  fc.record(
    {
      callId: hostileValue,
      role: fc.oneof(hostileValue, fc.constantFrom('caller', 'dispatcher', 'agent', 'observer', 'admin')),
      botMode: fc.oneof(hostileValue, fc.constantFrom('remove', 'transcriber', 'active')),
      action: fc.oneof(hostileValue, fc.constantFrom('start', 'stop', 'pause')),
      callerIdentity: hostileValue,
      greeting: hostileValue,
      text: hostileValue,
      interruptible: hostileValue,
      metadata: hostileValue,
      ttlS: hostileValue,
      extra: hostileValue,
    },
    { requiredKeys: ['extra'] },
  ).map((o) => JSON.stringify(o)),
  hostileValue.map((v) => JSON.stringify(v) ?? 'null'),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('{', '{"a":', '[1,2', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', 'null', '""'),
);
const hostileId = fc.oneof(
  fc.constantFrom('..', '%2e%2e', 'a%2Fb', '%00', '%ZZ', 'x'.repeat(300), '%F0%9F%98%80', 'id%20with%20space', '__proto__'),
  fc.stringMatching(/^[^/?#]{1,20}$/).map(encodeURIComponent),
);
const hostileAuth = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('Bearer', 'Bearer ', `Basic ${Buffer.from('a:b').toString('base64')}`, `Bearer ${TEST_API_KEY}x`, `bearer  ${'k'.repeat(600)}`),
  fc.string({ maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
);

describe('hostile requests', () => {
  it('answer every malformed request to every endpoint with a documented 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS),
        fc.oneof(hostileId, fc.constant(liveCallId)),
        hostileBody,
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/xml', 'multipart/form-data', undefined),
        fc.string({ maxLength: 30 }).map(encodeURIComponent),
        fc.option(fc.constantFrom('abc', '-1', '1e400', '99999999999999999999', '')),
        async (endpoint, id, body, contentType, query, lastEventId) => {
          const headers: Record<string, string> = { authorization: `Bearer ${TEST_API_KEY}` };
          if (contentType !== undefined) headers['content-type'] = contentType;
          if (lastEventId !== null) headers['last-event-id'] = lastEventId;
          const path = `${endpoint.path(id)}?${query}=${query}`;
          const res = await send(endpoint.method, path, headers, endpoint.method === 'POST' ? body : undefined);
          // A well-formed request can legitimately succeed (e.g. `{"callerIdentity":"x"}` with extra omitted is not
          // generated, but a GET with a harmless query can be); only errors are constrained here.
          if (res.status < 300) return;
          expectDocumentedError(res, `${endpoint.method} ${path} ${contentType} ${body.slice(0, 80)}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses bad or missing credentials on every authenticated endpoint with 401', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS), hostileAuth, async (endpoint, authorization) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (authorization !== undefined) headers.authorization = authorization;
        const res = await send(endpoint.method, endpoint.path(liveCallId), headers, endpoint.method === 'POST' ? '{}' : undefined);
        expect(res.status).toBe(401);
        expectDocumentedError(res, `${endpoint.method} auth=${authorization}`);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses forged webhooks with a documented 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        hostileBody,
        fc.oneof(fc.constant(undefined), hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)), fc.constant('eyJhbGciOiJIUzI1NiJ9.e30.x')),
        fc.constantFrom('application/webhook+json', 'application/json', 'text/plain', undefined),
        async (body, authorization, contentType) => {
          const headers: Record<string, string> = {};
          if (contentType !== undefined) headers['content-type'] = contentType;
          if (authorization !== undefined) headers.authorization = authorization;
          const res = await send('POST', '/v1/livekit/webhook', headers, body);
          expectDocumentedError(res, `webhook auth=${authorization} type=${contentType}`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('answers huge bodies with 413, wrong content types with 415, unknown routes with 404, other methods with 405, bad URLs with 400', async () => {
    const auth = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
    const huge = JSON.stringify({ metadata: { blob: 'x'.repeat(64 * 1024) } });
    for (const endpoint of ENDPOINTS.filter((e) => e.method === 'POST')) {
      const res = await send('POST', endpoint.path(liveCallId), auth, huge);
      expect(res.status, endpoint.path(liveCallId)).toBe(413);
      expectDocumentedError(res, 'huge body');
    }
    const webhookHuge = await send('POST', '/v1/livekit/webhook', { 'content-type': 'application/webhook+json' }, huge);
    expect(webhookHuge.status).toBe(413);

    const xml = await send('POST', '/v1/calls', { ...auth, 'content-type': 'application/xml' }, '<call/>');
    expect(xml.status).toBe(415);
    expectDocumentedError(xml, 'xml');

    const nope = await send('GET', '/nope', { authorization: auth.authorization });
    expect(nope.status).toBe(404);
    expectDocumentedError(nope, 'GET /nope');
    for (const [method, path, allow] of [
      ['DELETE', '/v1/calls', 'GET, HEAD, POST'],
      ['PUT', `/v1/calls/${liveCallId}`, 'GET, HEAD'],
      ['PATCH', '/v1/tokens', 'POST'],
      ['GET', `/v1/calls/${liveCallId}/end`, 'POST'],
      ['DELETE', `/v1/calls/${liveCallId}/events`, 'GET, HEAD'],
    ]) {
      const res = await send(method, path, { authorization: auth.authorization });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.allow, `${method} ${path}`).toBe(allow);
      expectDocumentedError(res, `${method} ${path}`);
      expect(JSON.parse(res.body).error.code).toBe('VE_METHOD_NOT_ALLOWED');
    }

    const badUrl = await send('GET', '/v1/calls/%E0%A4%A', auth);
    expectDocumentedError(badUrl, 'bad percent-encoding');

    const badJson = await send('POST', '/v1/calls', auth, '{"metadata":');
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.body).error.code).toBe('VE_BAD_JSON');

    const unknownField = await send('POST', '/v1/calls', auth, '{"isAdmin":true}');
    expect(unknownField.status).toBe(400);
    expect(JSON.parse(unknownField.body).error.code).toBe('VE_VALIDATION');

    const internalMetadata = await send('POST', '/v1/calls', auth, '{"metadata":{"_veRequestHash":"x"}}');
    expect(internalMetadata.status).toBe(400);
  });

  it('keeps serving good requests after all of that', async () => {
    const created = await h.api('/v1/calls', { method: 'POST', json: { metadata: { after: 'fuzz' } } });
    expect(created.status).toBe(201);
    const { callId } = (await created.json()) as { callId: string };
    const got = await h.api(`/v1/calls/${callId}`);
    expect(got.status).toBe(200);
    expect(((await got.json()) as { metadata: unknown }).metadata).toEqual({ after: 'fuzz' });
    expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).not.toMatch(/status="5\d\d"/);
  });
});

/**
 * The request-body schema of an operation as `/openapi.json` states it, compiled by a separate Ajv that
 * knows the document's two `x-` keywords from their description alone (not from the server's code).
 */
function documentedBodyValidators(doc: Record<string, unknown>): (path: string, method: string) => ValidateFunction {
  let ajv: Ajv | undefined;
  AjvCompiler()({}, { customOptions: { strict: false, coerceTypes: false, useDefaults: false, removeAdditional: false }, onCreate: (a) => (ajv = a) });
  // Level by level, since the crafted values are nested deeper than the stack allows to recurse.
  const containers = (values: unknown[]) => values.filter((v): v is object => v !== null && typeof v === 'object');
  const depth = (value: unknown): number => {
    let levels = 0;
    for (let level = containers([value]); level.length > 0; levels++) level = containers(level.flatMap((v) => (Array.isArray(v) ? v : Object.values(v))));
    return levels;
  };
  ajv!.addKeyword({ keyword: 'x-maxDepth', schemaType: 'number', validate: (limit: number, data: unknown) => depth(data) <= limit });
  ajv!.addKeyword({ keyword: 'x-maxJsonBytes', schemaType: 'number', validate: (limit: number, data: unknown) => Buffer.byteLength(JSON.stringify(data)) <= limit });
  ajv!.addSchema(doc, 'openapi.json');
  const pointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
  return (path, method) => ajv!.compile({ $ref: `openapi.json#/paths/${pointer(path)}/${method}/requestBody/content/${pointer('application/json')}/schema` });
}

function nestedArrays(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

describe('the OpenAPI document describes exactly what is accepted', () => {
  let createBody: ValidateFunction;
  let tokenBody: ValidateFunction;
  let tokenCallId: string;
  const auth = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };

  beforeAll(async () => {
    // The hostile requests above may have ended the shared call; tokens need a live one.
    tokenCallId = ((await (await h.api('/v1/calls', { method: 'POST', json: {} })).json()) as { callId: string }).callId;
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as Record<string, unknown>;
    const validator = documentedBodyValidators(doc);
    createBody = validator('/v1/calls', 'post');
    tokenBody = validator('/v1/tokens', 'post');
  });

  /** Sends the body and checks that the server and the document agree on it; returns the answer. */
  async function agree(path: string, schema: ValidateFunction, body: unknown, context = JSON.stringify(body)?.slice(0, 120)): Promise<RawResponse> {
    const text = JSON.stringify(body);
    const documented = schema(JSON.parse(text));
    const res = await send('POST', path, auth, text);
    expect(res.status, `${context} -> ${res.body.slice(0, 200)}`).toBeLessThan(500);
    const accepted = res.status < 300;
    if (!accepted) expectDocumentedError(res, context ?? '');
    expect(accepted, `${context}: document says ${documented ? 'valid' : JSON.stringify(schema.errors?.[0])}, server ${res.status} ${res.body.slice(0, 200)}`).toBe(documented);
    return res;
  }

  it('states the metadata bounds, the cursor format, the scopes and the 405 answer', async () => {
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    const metadata = doc.paths['/v1/calls'].post.requestBody.content['application/json'].schema.properties.metadata;
    expect(metadata).toMatchObject({ 'x-maxDepth': 8, 'x-maxJsonBytes': 8192, maxProperties: 32 });

    const cursor = doc.paths['/v1/calls'].get.parameters.find((p: { name: string }) => p.name === 'cursor');
    const page = (await (await h.api('/v1/calls?limit=1')).json()) as { nextCursor?: string };
    expect(page.nextCursor).toMatch(new RegExp(cursor.schema.pattern));
    expect('not a cursor!').not.toMatch(new RegExp(cursor.schema.pattern));
    const refused = await send('GET', '/v1/calls?cursor=not%20a%20cursor', { authorization: auth.authorization });
    expect(JSON.parse(refused.body).error.code).toBe('VE_VALIDATION');

    expect(doc.paths['/v1/calls'].get.security).toEqual([{ apiKey: ['read'] }, { apiKey: ['calls'] }]);
    expect(doc.paths['/v1/calls/{id}/end'].post.security).toEqual([{ apiKey: ['calls'] }]);
    expect(doc.paths['/v1/console/simulated-callers'].delete.security).toEqual([{ apiKey: ['calls', 'admin'] }]);
    expect(doc.paths['/v1/livekit/webhook'].post.security).toEqual([]);
    expect(doc.paths['/v1/calls/{id}/end'].post.responses['403']).toBeDefined();
    expect(doc.components.responses.MethodNotAllowed.headers.Allow).toBeDefined();
    expect(doc.info.description).toContain('405 `VE_METHOD_NOT_ALLOWED`');
  });

  it('for crafted POST /v1/calls bodies: deep or large metadata, wrong types, unknown fields, reserved identities', async () => {
    const exactly8KiB = { k: 'x'.repeat(8192 - '{"k":""}'.length) };
    const crafted: [string, unknown, boolean][] = [
      ['metadata nested 3000 deep', { metadata: { a: nestedArrays(3000) } }, false],
      ['metadata nested 8 deep (the bound)', { metadata: { a: nestedArrays(7) } }, true],
      ['metadata nested 9 deep', { metadata: { a: nestedArrays(8) } }, false],
      ['objects nested 9 deep', { metadata: { a: { b: { c: { d: { e: { f: { g: { h: {} } } } } } } } } }, false],
      ['metadata of exactly 8 KiB', { metadata: exactly8KiB }, true],
      ['metadata one byte over 8 KiB', { metadata: { k: `${exactly8KiB.k}x` } }, false],
      ['boolean callerName', { callerName: true }, false],
      ['numeric callerName', { callerName: 5 }, false],
      ['numeric instructions', { instructions: 1 }, false],
      ['unknown field', { isAdmin: true }, false],
      ['bot identity as caller', { callerIdentity: 'bot-1234' }, false],
      ['identity containing bot-', { callerIdentity: 'robot-bot-1' }, true],
      ['internal metadata key', { metadata: { _veApiKey: 'admin' } }, false],
      ['__proto__ in metadata', JSON.parse('{"metadata":{"a":{"__proto__":{"x":1}}}}'), false],
      ['constructor.prototype in metadata', { metadata: { a: [{ constructor: { prototype: 1 } }] } }, false],
      ['a plain constructor key', { metadata: { constructor: 'x' } }, true],
      ['null and mixed values', { metadata: { a: null, b: [1, 'two', false, { c: null }] } }, true],
    ];
    for (const [name, body, expected] of crafted) {
      expect(createBody(JSON.parse(JSON.stringify(body))), name).toBe(expected);
      const res = await agree('/v1/calls', createBody, body, name);
      if (name === 'metadata nested 3000 deep') expect(JSON.parse(res.body).error).toEqual({ code: 'VE_VALIDATION', message: 'body/metadata must not nest objects and arrays more than 8 levels deep' });
      if (name === 'metadata one byte over 8 KiB') expect(JSON.parse(res.body).error.message).toBe('body/metadata must take at most 8192 bytes as JSON');
    }
  });

  it('for generated POST /v1/calls and POST /v1/tokens bodies: accepted by the schema <=> accepted by the server', async () => {
    const key = fc.oneof(
      { arbitrary: fc.stringMatching(/^[A-Za-z0-9_.-]{1,10}$/), weight: 6 },
      { arbitrary: fc.constantFrom('_veOwner', '__proto__', 'constructor', 'prototype', 'a b', '', 'x'.repeat(65)), weight: 1 },
    );
    const scalar = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small', maxDepth: 10 }, scalar, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(key, tie('value'), { maxKeys: 3 })),
    }));
    const metadata = fc.oneof(
      { arbitrary: fc.dictionary(key, value, { maxKeys: 4 }), weight: 6 },
      { arbitrary: fc.integer({ min: 0, max: 11 }).map((levels) => ({ deep: nestedArrays(levels) })), weight: 2 },
      { arbitrary: fc.integer({ min: 8150, max: 8250 }).map((n) => ({ big: 'x'.repeat(n) })), weight: 1 },
      { arbitrary: fc.dictionary(key, scalar, { minKeys: 33, maxKeys: 34 }), weight: 1 },
      { arbitrary: fc.oneof(scalar, fc.array(scalar)), weight: 1 },
    );
    const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ arbitrary: good, weight: 5 }, { arbitrary: bad, weight: 1 });
    const identity = mostly(fc.stringMatching(/^[A-Za-z0-9_.:@+-]{1,20}$/), fc.oneof(fc.constantFrom('bot-x', 'Bot-x', 'a b', '', 'x'.repeat(129)), fc.boolean(), fc.integer()));
    const createCall = fc.record(
      {
        callerIdentity: identity,
        callerName: mostly(fc.string({ minLength: 1, maxLength: 20 }), fc.oneof(fc.constant(''), fc.boolean(), fc.integer(), fc.constant(null), fc.string({ minLength: 129, maxLength: 130 }))),
        instructions: mostly(fc.string({ maxLength: 40 }), fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string()))),
        metadata,
        unexpected: fc.oneof(fc.string(), fc.integer()),
      },
      { requiredKeys: [] },
    ).filter((body) => !('unexpected' in body) || Math.random() < 0.5);
    const token = fc.record(
      {
        callId: mostly(fc.constant(tokenCallId), fc.oneof(fc.integer(), fc.constant(''))),
        role: mostly(fc.constantFrom('caller', 'dispatcher', 'observer'), fc.constantFrom('agent', 'bot', 'admin', 1)),
        identity,
        name: mostly(fc.string({ minLength: 1, maxLength: 20 }), fc.oneof(fc.constant(''), fc.boolean())),
        ttlS: mostly(fc.integer({ min: 60, max: 3600 }), fc.oneof(fc.integer({ min: 3601, max: 86_400 }), fc.integer({ min: -5, max: 59 }), fc.constant('600'), fc.constant(600.5))),
      },
      { requiredKeys: ['callId', 'role'] },
    );

    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof({ arbitrary: createCall.map((b) => ['/v1/calls', b] as const), weight: 3 }, token.map((b) => ['/v1/tokens', b] as const)), async ([path, body]) => {
        const res = await agree(path, path === '/v1/calls' ? createBody : tokenBody, body);
        if (res.status < 300) accepted++;
        else refused++;
      }),
      { numRuns: 250 },
    );
    // Both sides of the equivalence were exercised, not only refusals.
    expect(accepted).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(10);
  });
});
