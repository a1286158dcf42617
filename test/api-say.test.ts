/**
 * `POST /v1/calls` with a greeting and `POST /v1/calls/:id/say`, on the REST layer with the FakeEngine
 * and a real LiveKit server on loopback: the schema (strict, no coercion), what reaches the engine, 404
 * for an unknown or another key's call, 409 for an ended call, 403 for a read-only key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { OTHER_API_KEY, READ_API_KEY, startHarness, type Harness } from '../server/testing/harness.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
const engine = new FakeEngine({ maxCalls: 1000 });

beforeAll(async () => {
  livekit = await startLiveKitServer();
  h = await startHarness({ livekit, engine });
});

afterAll(async () => {
  await h?.close();
  await livekit?.stop();
});

async function createCall(json: unknown = {}): Promise<string> {
  const res = await h.api('/v1/calls', { method: 'POST', json });
  expect(res.status).toBe(201);
  return ((await res.json()) as { callId: string }).callId;
}

async function codeOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe('greeting', () => {
  it('reaches the engine with the call', async () => {
    const callId = await createCall({ greeting: 'Hello, dispatch here.' });
    expect(engine.calls.get(callId)?.req.greeting).toBe('Hello, dispatch here.');
  });

  it('is a non-empty string of at most 2000 characters', async () => {
    for (const greeting of ['', 'x'.repeat(2001), 42, null]) {
      const res = await h.api('/v1/calls', { method: 'POST', json: { greeting } });
      expect(res.status, JSON.stringify(greeting)).toBe(400);
      expect(await codeOf(res)).toBe('VE_VALIDATION');
    }
  });
});

describe('POST /v1/calls/:id/say', () => {
  it('makes the bot say the text, interruptible unless told otherwise', async () => {
    const callId = await createCall();
    const res = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: 'Your load is ready.' } });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ callId, interruptible: true });
    const res2 = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: 'Road closed on I-80.', interruptible: false } });
    expect(res2.status).toBe(202);
    expect(engine.calls.get(callId)?.said).toEqual([
      { text: 'Your load is ready.', interruptible: true },
      { text: 'Road closed on I-80.', interruptible: false },
    ]);
  });

  it('rejects a bad body: no text, empty or too long text, a string for the flag, unknown fields', async () => {
    const callId = await createCall();
    for (const json of [{}, { text: '' }, { text: 'x'.repeat(2001) }, { text: 'hi', interruptible: 'false' }, { text: 'hi', loud: true }]) {
      const res = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(await codeOf(res)).toBe('VE_VALIDATION');
    }
    expect(engine.calls.get(callId)?.said).toBeUndefined();
  });

  it("answers 404 for an unknown call and for another key's call, 403 for a read-only key", async () => {
    const callId = await createCall();
    const unknown = await h.api('/v1/calls/00000000-0000-4000-8000-000000000000/say', { method: 'POST', json: { text: 'hi' } });
    expect(unknown.status).toBe(404);
    expect(await codeOf(unknown)).toBe('VE_CALL_NOT_FOUND');
    const other = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: 'hi' }, key: OTHER_API_KEY });
    expect(other.status).toBe(404);
    expect(await codeOf(other)).toBe('VE_CALL_NOT_FOUND');
    const read = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: 'hi' }, key: READ_API_KEY });
    expect(read.status).toBe(403);
    expect(engine.calls.get(callId)?.said).toBeUndefined();
  });

  it('answers 409 VE_CALL_ENDED for an ended call', async () => {
    const callId = await createCall();
    expect((await h.api(`/v1/calls/${callId}/end`, { method: 'POST' })).status).toBe(200);
    const res = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: 'hi' } });
    expect(res.status).toBe(409);
    expect(await codeOf(res)).toBe('VE_CALL_ENDED');
  });

  it('is in the OpenAPI document, as is the greeting', async () => {
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as any;
    const say = doc.paths['/v1/calls/{id}/say'].post;
    expect(Object.keys(say.requestBody.content['application/json'].schema.properties).sort()).toEqual(['interruptible', 'text']);
    expect(Object.keys(say.responses)).toEqual(expect.arrayContaining(['202', '403', '404', '409', '501']));
    expect(doc.paths['/v1/calls'].post.requestBody.content['application/json'].schema.properties).toHaveProperty('greeting');
  });

  it('answers 502 VE_ENGINE_FAILED when the engine fails', async () => {
    const callId = await createCall();
    engine.failNext('say', new Error('boom'));
    const res = await h.api(`/v1/calls/${callId}/say`, { method: 'POST', json: { text: 'hi' } });
    expect(res.status).toBe(502);
    expect(await codeOf(res)).toBe('VE_ENGINE_FAILED');
  });
});
