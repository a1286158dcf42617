import { afterEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { OpenAiFakeServer, tokenize } from './openai-server.ts';

let server: OpenAiFakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const post = (body: object, headers: Record<string, string> = {}) =>
  fetch(`${server!.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer k', ...headers },
    body: JSON.stringify(body),
  });

describe('OpenAiFakeServer', () => {
  it('streams SSE chat.completion.chunk events ending with [DONE]', async () => {
    server = await OpenAiFakeServer.start({ responder: () => ({ text: 'Hi there. Bye.' }) });
    const res = await post({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id)).toBe(true);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('Hi there. Bye.');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
  });

  it('answers non-streaming requests through the official SDK, tool calls included', async () => {
    server = await OpenAiFakeServer.start({ apiKey: 'k' });
    const client = new OpenAI({ apiKey: 'k', baseURL: server.baseUrl, organization: null, project: null, maxRetries: 0 });
    const reply = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'get me a human' }],
      tools: [{ type: 'function', function: { name: 'transfer_to_human', parameters: { type: 'object' } } }],
    });
    expect(reply.choices[0].finish_reason).toBe('tool_calls');
    const call = reply.choices[0].message.tool_calls![0];
    expect(call.type === 'function' && call.function.name).toBe('transfer_to_human');
    const plain = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
    expect(plain.choices[0].message.content).toContain('hello');
  });

  it('rejects a wrong key with 401 and an OpenAI error body, and injects failures', async () => {
    server = await OpenAiFakeServer.start({ apiKey: 'k' });
    const bad = await post({ model: 'm', messages: [] }, { authorization: 'Bearer nope' });
    expect(bad.status).toBe(401);
    expect((await bad.json()).error.code).toBe('invalid_api_key');
    server.failNext({ kind: 'status', status: 503 });
    const failed = await post({ model: 'm', messages: [] });
    expect(failed.status).toBe(503);
    expect((await failed.json()).error.type).toBe('server_error');
    expect(server.requests.map((r) => r.body.model)).toEqual(['m', 'm']);
  });

  it('tokenizes text into word-sized pieces that join back losslessly', () => {
    const text = 'Well, it is 3.5 km. OK?';
    expect(tokenize(text).join('')).toBe(text);
    expect(tokenize(text).length).toBeGreaterThan(5);
  });
});
