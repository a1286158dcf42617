import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SentenceSplitter, splitSentences } from './sentence-splitter.ts';

function splitAll(pieces: string[], options = {}): string[] {
  const s = new SentenceSplitter(options);
  const out: string[] = [];
  for (const p of pieces) out.push(...s.push(p));
  out.push(...s.flush());
  return out;
}

describe('SentenceSplitter', () => {
  it('splits at terminators followed by whitespace', () => {
    expect(splitAll(['Hello there. How are you? I am fine! Bye'])).toEqual([
      'Hello there.',
      'How are you?',
      'I am fine!',
      'Bye',
    ]);
  });

  it('waits for the character after a period before deciding', () => {
    const s = new SentenceSplitter();
    expect(s.push('It costs 3.')).toEqual([]);
    expect(s.push('5 dollars. Then')).toEqual(['It costs 3.5 dollars.']);
    expect(s.flush()).toEqual(['Then']);
  });

  it('does not split abbreviations, initials or list numbers', () => {
    expect(splitAll(['Dr. Smith met J. Doe at 5 p.m. today. Next.'])).toEqual([
      'Dr. Smith met J. Doe at 5 p.m. today.',
      'Next.',
    ]);
    expect(splitAll(['Steps:\n1. Open the door.\n2. Walk in.'])).toEqual(['Steps:', '1. Open the door.', '2. Walk in.']);
  });

  it('keeps closing quotes and brackets with their sentence', () => {
    expect(splitAll(['He said "stop." Then (quietly!) left.'])).toEqual(['He said "stop."', 'Then (quietly!) left.']);
  });

  it('joins sentences shorter than minChars with the next one', () => {
    expect(splitAll(['Ok. Sure. Let me check that for you. Done.'], { minChars: 10 })).toEqual([
      'Ok. Sure. Let me check that for you.',
      'Done.',
    ]);
  });

  it('cuts a run-on clause at a comma once it passes maxChars', () => {
    const out = splitAll(['one two three, four five six, seven eight nine ten eleven'], { maxChars: 30 });
    expect(out[0]).toBe('one two three, four five six,');
    expect(out.join(' ')).toBe('one two three, four five six, seven eight nine ten eleven');
  });

  it('gives the same sentences however the text is chunked', () => {
    const text = 'Hello there. It is 3.5 km away! Dr. Who? Yes.\nNew line here… and more. End';
    const whole = splitAll([text]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const pieces: string[] = [];
        let last = 0;
        for (const p of points) {
          pieces.push(text.slice(last, p));
          last = p;
        }
        pieces.push(text.slice(last));
        expect(splitAll(pieces)).toEqual(whole);
      }),
    );
  });

  it('emits the first sentence before the stream ends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let streamEnded = false;
    async function* tokens(): AsyncGenerator<string> {
      for (const t of ['Sure', ',', ' I can', ' help', '.', ' Let', ' me']) yield t;
      await gate;
      yield ' check.';
      streamEnded = true;
    }
    const it = splitSentences(tokens())[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toBe('Sure, I can help.');
    expect(streamEnded).toBe(false);
    release();
    expect((await it.next()).value).toBe('Let me check.');
    expect((await it.next()).done).toBe(true);
    expect(streamEnded).toBe(true);
  });
});
