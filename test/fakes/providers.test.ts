import { describe, expect, it } from 'vitest';
import type { LlmChunk } from '../../engine/providers/llm.ts';
import type { TranscriptResult } from '../../engine/providers/stt.ts';
import { ScriptedLlm, ScriptedStt, ToneTts } from './providers.ts';

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('in-process provider fakes', () => {
  it('ScriptedLlm plays replies in order, appends done and records requests', async () => {
    const llm = new ScriptedLlm([ScriptedLlm.text('Hi there.'), () => [{ type: 'tool_call', call: { id: 'c1', name: 'x', argumentsJson: '{}' } }]]);
    const signal = new AbortController().signal;
    const first = await drain(llm.complete({ messages: [{ role: 'user', content: 'a' }], signal }));
    expect(first).toEqual<LlmChunk[]>([{ type: 'text', text: 'Hi' }, { type: 'text', text: ' there.' }, { type: 'done' }]);
    const second = await drain(llm.complete({ messages: [{ role: 'user', content: 'b' }], signal }));
    expect(second.map((c) => c.type)).toEqual(['tool_call', 'done']);
    expect(llm.requests.map((r) => r.messages[0].content)).toEqual(['a', 'b']);
  });

  it('ScriptedLlm and ToneTts stop with VE_PROVIDER_ABORTED', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(drain(new ScriptedLlm([ScriptedLlm.text('x')]).complete({ messages: [], signal: ac.signal }))).rejects.toMatchObject({
      code: 'VE_PROVIDER_ABORTED',
    });
    await expect(drain(new ToneTts().synthesize('hello', { signal: ac.signal }))).rejects.toMatchObject({ code: 'VE_PROVIDER_ABORTED' });
  });

  it('ToneTts length follows the text', async () => {
    const tts = new ToneTts({ sampleRate: 16000, msPerChar: 10 });
    const pieces = await drain(tts.synthesize('0123456789', { signal: new AbortController().signal }));
    expect(pieces.reduce((n, p) => n + p.pcm.length, 0)).toBe(1600);
    expect(pieces.every((p) => p.sampleRate === 16000 && p.pcm.length <= 320)).toBe(true);
  });

  it('ScriptedStt delivers hand-emitted results and counts audio', () => {
    const stt = new ScriptedStt();
    const got: TranscriptResult[] = [];
    const s = stt.stream({ sampleRate: 16000, onResult: (r) => got.push(r), onError: () => {} });
    s.pushAudio(new Int16Array(320));
    stt.current.emit({ kind: 'interim', text: 'hel' });
    stt.current.emit({ text: 'hello', endMs: 500 });
    expect(s.pushedSamples).toBe(320);
    expect(got.map((r) => [r.kind, r.text, r.speechFinal])).toEqual([
      ['interim', 'hel', false],
      ['final', 'hello', true],
    ]);
  });
});
