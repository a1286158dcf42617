import { afterEach, describe, expect, it, vi } from 'vitest';
import { OpenAiFakeServer, defaultResponder } from './local/openai-server.ts';
import type { VoiceError } from '../errors.ts';
import { OpenAiLlm } from './openai-llm.ts';
import type { ChatMessage, LlmChunk, ToolSpec } from './llm.ts';
import { splitSentences } from './sentence-splitter.ts';

/** The machine is shared: give eventual conditions room without asserting on speed. */
const WAIT = { timeout: 10_000 };

let server: OpenAiFakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const transfer: ToolSpec = {
  name: 'transfer_to_human',
  description: 'Hand the call to a human agent.',
  parameters: { type: 'object', properties: { reason: { type: 'string' } }, required: ['reason'] },
};

function llm(options: { timeoutMs?: number } = {}): OpenAiLlm {
  return new OpenAiLlm({ apiKey: 'sk-test', baseUrl: server!.baseUrl, model: 'gpt-test', ...options });
}

async function collect(stream: AsyncIterable<LlmChunk>): Promise<LlmChunk[]> {
  const out: LlmChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

async function failure(stream: AsyncIterable<LlmChunk>): Promise<VoiceError> {
  try {
    await collect(stream);
  } catch (err) {
    return err as VoiceError;
  }
  throw new Error('expected the stream to fail');
}

const user = (content: string): ChatMessage[] => [
  { role: 'system', content: 'You are a dispatcher.' },
  { role: 'user', content },
];

describe('OpenAiLlm against the local OpenAI server', () => {
  it('streams the reply as text chunks and ends with done', async () => {
    server = await OpenAiFakeServer.start({ apiKey: 'sk-test' });
    const chunks = await collect(llm().complete({ messages: user('where is my order'), signal: new AbortController().signal }));
    const texts = chunks.filter((c) => c.type === 'text');
    expect(texts.length).toBeGreaterThan(5);
    expect(texts.map((c) => c.text).join('')).toBe(defaultResponder({ model: 'x', messages: [{ role: 'user', content: 'where is my order' }], tools: [] }).text);
    expect(chunks.at(-1)).toEqual({ type: 'done' });

    const req = server.requests[0];
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer sk-test');
    expect(req.body).toMatchObject({ model: 'gpt-test', stream: true, messages: [{ role: 'system' }, { role: 'user', content: 'where is my order' }] });
    expect(req.body.tools).toBeUndefined();
  });

  it('assembles a tool call from its streamed deltas', async () => {
    server = await OpenAiFakeServer.start();
    const chunks = await collect(
      llm().complete({ messages: user('I want to talk to a human please'), tools: [transfer], signal: new AbortController().signal }),
    );
    const calls = chunks.filter((c) => c.type === 'tool_call');
    expect(calls).toHaveLength(1);
    const call = (calls[0] as Extract<LlmChunk, { type: 'tool_call' }>).call;
    expect(call.name).toBe('transfer_to_human');
    expect(call.id).toMatch(/^call_/);
    expect(JSON.parse(call.argumentsJson)).toEqual({ reason: 'I want to talk to a human please' });
    expect(chunks.at(-1)).toEqual({ type: 'done' });
    expect(server.requests[0].body.tools).toEqual([{ type: 'function', function: transfer }]);
  });

  it('keeps text and several tool calls apart, in order', async () => {
    server = await OpenAiFakeServer.start({
      responder: () => ({
        text: 'Booking now.',
        toolCalls: [
          { name: 'book', arguments: { size: 'large', notes: 'fragile, "glass"' } },
          { name: 'notify', arguments: '{"channel":"sms"}' },
        ],
      }),
    });
    const chunks = await collect(llm().complete({ messages: user('book it'), tools: [transfer], signal: new AbortController().signal }));
    expect(chunks.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('')).toBe('Booking now.');
    const calls = chunks.flatMap((c) => (c.type === 'tool_call' ? [c.call] : []));
    expect(calls.map((c) => c.name)).toEqual(['book', 'notify']);
    expect(JSON.parse(calls[0].argumentsJson)).toEqual({ size: 'large', notes: 'fragile, "glass"' });
    expect(calls[1].argumentsJson).toBe('{"channel":"sms"}');
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
  });

  it('sends assistant tool calls and tool results in the OpenAI wire format', async () => {
    server = await OpenAiFakeServer.start();
    const messages: ChatMessage[] = [
      { role: 'user', content: 'book it' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'book', argumentsJson: '{}' }] },
      { role: 'tool', content: '{"ok":true}', toolCallId: 'call_1' },
    ];
    await collect(llm().complete({ messages, signal: new AbortController().signal }));
    expect(server.requests[0].body.messages).toEqual([
      { role: 'user', content: 'book it' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'book', arguments: '{}' } }] },
      { role: 'tool', content: '{"ok":true}', tool_call_id: 'call_1' },
    ]);
  });

  it('fails with VE_LLM_TIMEOUT when the server never answers', async () => {
    server = await OpenAiFakeServer.start();
    server.failNext({ kind: 'hang' });
    const err = await failure(llm().complete({ messages: user('hello'), signal: new AbortController().signal, timeoutMs: 150 }));
    expect(err.code).toBe('VE_LLM_TIMEOUT');
    expect(err.retryable).toBe(true);
    await vi.waitFor(() => expect(server!.requests[0].clientAborted).toBe(true), WAIT);
  });

  it('fails with VE_LLM_TIMEOUT when the stream stalls midway', async () => {
    server = await OpenAiFakeServer.start();
    server.failNext({ kind: 'stall', afterChunks: 3 });
    const seen: LlmChunk[] = [];
    let err: VoiceError | undefined;
    try {
      for await (const c of llm().complete({ messages: user('hello'), signal: new AbortController().signal, timeoutMs: 150 })) seen.push(c);
    } catch (e) {
      err = e as VoiceError;
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(err?.code).toBe('VE_LLM_TIMEOUT');
  });

  it('does not count time the consumer spends holding a chunk', async () => {
    server = await OpenAiFakeServer.start({ responder: () => ({ text: 'Yes.' }) });
    const chunks: LlmChunk[] = [];
    for await (const c of llm().complete({ messages: user('hi'), signal: new AbortController().signal, timeoutMs: 100 })) {
      chunks.push(c);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(chunks.at(-1)).toEqual({ type: 'done' });
  });

  it('stops with VE_PROVIDER_ABORTED when the signal aborts mid-stream', async () => {
    server = await OpenAiFakeServer.start({ chunkDelayMs: 30 });
    const ac = new AbortController();
    const seen: LlmChunk[] = [];
    let err: VoiceError | undefined;
    try {
      for await (const c of llm().complete({ messages: user('tell me everything'), signal: ac.signal })) {
        seen.push(c);
        if (seen.length === 2) ac.abort();
      }
    } catch (e) {
      err = e as VoiceError;
    }
    expect(err?.code).toBe('VE_PROVIDER_ABORTED');
    expect(seen).toHaveLength(2);
    await vi.waitFor(() => expect(server!.requests[0].clientAborted).toBe(true), WAIT);
    // Already aborted: fails before any request.
    const again = await failure(llm().complete({ messages: user('x'), signal: ac.signal }));
    expect(again.code).toBe('VE_PROVIDER_ABORTED');
    expect(server.requests).toHaveLength(1);
  });

  it('maps HTTP errors to VE_LLM_FAILED with retryability from the status', async () => {
    server = await OpenAiFakeServer.start();
    server.failNext({ kind: 'status', status: 500 });
    const e500 = await failure(llm().complete({ messages: user('hi'), signal: new AbortController().signal }));
    expect(e500).toMatchObject({ code: 'VE_LLM_FAILED', retryable: true, upstreamStatus: 500 });
    server.failNext({ kind: 'status', status: 400 });
    const e400 = await failure(llm().complete({ messages: user('hi'), signal: new AbortController().signal }));
    expect(e400).toMatchObject({ code: 'VE_LLM_FAILED', retryable: false, upstreamStatus: 400 });
    // No SDK-level retries by default: one request per failure.
    expect(server.requests).toHaveLength(2);
  });

  it('reports a connection cut mid-reply as a retryable VE_LLM_FAILED, not as a finished reply', async () => {
    server = await OpenAiFakeServer.start();
    server.failNext({ kind: 'drop', afterChunks: 3 });
    const err = await failure(llm().complete({ messages: user('hello'), signal: new AbortController().signal }));
    expect(err).toMatchObject({ code: 'VE_LLM_FAILED', retryable: true });
  });

  it('feeds the sentence splitter, which yields the first sentence before the reply ends', async () => {
    server = await OpenAiFakeServer.start({ chunkDelayMs: 10, responder: () => ({ text: 'Sure, I can do that. Your truck arrives at noon. Anything else?' }) });
    const ac = new AbortController();
    const model = llm();
    async function* texts(): AsyncGenerator<string> {
      for await (const c of model.complete({ messages: user('truck'), signal: ac.signal })) if (c.type === 'text') yield c.text;
    }
    const sentences: Array<{ text: string; replyFinished: boolean }> = [];
    for await (const s of splitSentences(texts())) sentences.push({ text: s, replyFinished: server.requests[0].responseFinished });
    expect(sentences.map((s) => s.text)).toEqual(['Sure, I can do that.', 'Your truck arrives at noon.', 'Anything else?']);
    expect(sentences[0].replyFinished).toBe(false);
  });
});
