/**
 * Turns a streamed LLM reply into sentences as early as possible, so that text-to-speech can start on
 * the first sentence while the model is still writing the rest.
 *
 * A sentence ends at `.`, `!`, `?`, `…` (or their CJK forms), optionally followed by closing quotes or
 * brackets, once the text after it is known to be whitespace and a word that does not start in lower
 * case; a newline also ends one. The end of a
 * chunk is never treated as the end of a sentence ("3." may become "3.5"), except by `flush()`.
 */

export interface SentenceSplitterOptions {
  /**
   * A sentence shorter than this (in characters) is held back and joined with the next one, to avoid
   * very short TTS requests. Default 0: emit every sentence as soon as it ends.
   */
  minChars?: number;
  /**
   * Text that grows past this many characters without a sentence end is cut at the last clause break
   * (`,` `;` `:` or a dash) or, failing that, the last space, so a run-on reply still starts speaking.
   * Default 240.
   */
  maxChars?: number;
}

const TERMINATORS = new Set(['.', '!', '?', '…', '。', '！', '？']);
const CLOSERS = new Set(['"', "'", '”', '’', ')', ']', '»']);
/** Words that end with a period without ending the sentence (lower-case, without the period). */
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'mt', 'vs', 'e.g', 'i.e', 'a.m', 'p.m', 'approx', 'dept',
  'inc', 'ltd', 'co', 'no', 'vol', 'fig', 'est', 'ave', 'blvd', 'rd',
]);
const CJK_TERMINATORS = new Set(['。', '！', '？']);
const CLAUSE_BREAKS = new Set([',', ';', ':', '—', '–']);

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r' || ch === '\u00a0';
}

function isLowerCaseLetter(ch: string): boolean {
  return ch !== ch.toUpperCase() && ch === ch.toLowerCase();
}

export class SentenceSplitter {
  private buffer = '';
  /** Index in `buffer` before which no boundary can be found anymore, so scans stay linear. */
  private scanFrom = 0;
  private readonly minChars: number;
  private readonly maxChars: number;

  constructor(options: SentenceSplitterOptions = {}) {
    this.minChars = options.minChars ?? 0;
    this.maxChars = options.maxChars ?? 240;
  }

  /** Add streamed text; returns the sentences it completed, trimmed, in order. */
  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    for (;;) {
      const end = this.findBoundary();
      if (end < 0) break;
      const sentence = this.buffer.slice(0, end).trim();
      if (sentence.length < this.minChars) {
        // Keep it and look for the next boundary after it.
        this.scanFrom = end;
        continue;
      }
      this.take(end, sentence, out);
    }
    while (this.buffer.trim().length > this.maxChars) {
      const cut = this.findSoftCut();
      if (cut <= 0) break;
      this.take(cut, this.buffer.slice(0, cut).trim(), out);
    }
    return out;
  }

  /** The reply is over: returns what is left (0 or 1 sentence) and resets the splitter. */
  flush(): string[] {
    const rest = this.buffer.trim();
    this.buffer = '';
    this.scanFrom = 0;
    return rest.length > 0 ? [rest] : [];
  }

  private take(end: number, sentence: string, out: string[]): void {
    if (sentence.length > 0) out.push(sentence);
    this.buffer = this.buffer.slice(end).replace(/^\s+/, '');
    this.scanFrom = 0;
  }

  /** Index just past a sentence end whose following character is known, or -1. */
  private findBoundary(): number {
    const b = this.buffer;
    for (let i = this.scanFrom; i < b.length; i++) {
      const ch = b[i];
      if (ch === '\n') {
        if (b.slice(0, i).trim().length > 0) return i + 1;
        continue;
      }
      if (!TERMINATORS.has(ch)) continue;
      let j = i + 1;
      while (j < b.length && (TERMINATORS.has(b[j]) || CLOSERS.has(b[j]))) j++;
      if (j >= b.length) {
        // CJK text has no space after a full stop, so its end is final; otherwise wait for more.
        if (CJK_TERMINATORS.has(b[j - 1])) return j;
        return -1;
      }
      if (CJK_TERMINATORS.has(ch)) return j;
      if (!isSpace(b[j])) {
        i = j - 1;
        continue;
      }
      if (ch === '.' && this.isNonFinalPeriod(i)) {
        i = j - 1;
        continue;
      }
      // A lower-case word after it means the sentence goes on ("approx. five", "(quietly!) left").
      let k = j;
      while (k < b.length && isSpace(b[k])) k++;
      if (k >= b.length) return -1;
      if (isLowerCaseLetter(b[k])) {
        i = j - 1;
        continue;
      }
      return j;
    }
    // A terminator may be the last character, so the next push must look at it again.
    this.scanFrom = Math.max(0, b.length - 1);
    while (this.scanFrom > 0 && (TERMINATORS.has(b[this.scanFrom - 1]) || CLOSERS.has(b[this.scanFrom - 1]))) {
      this.scanFrom--;
    }
    return -1;
  }

  /** Whether the period at `index` belongs to an abbreviation, an initial or a list number. */
  private isNonFinalPeriod(index: number): boolean {
    const b = this.buffer;
    let start = index;
    while (start > 0 && !isSpace(b[start - 1]) && !CLOSERS.has(b[start - 1]) && b[start - 1] !== '(') start--;
    const word = b.slice(start, index);
    if (word.length === 0) return false;
    if (ABBREVIATIONS.has(word.toLowerCase())) return true;
    // "J. Smith": a single capital letter is an initial.
    if (word.length === 1 && word >= 'A' && word <= 'Z') return true;
    // "1. First item" at the start of a line is a list number, not a sentence.
    if (/^\d+$/.test(word)) {
      const before = b.slice(0, start);
      return before.trim().length === 0 || /\n\s*$/.test(before);
    }
    return false;
  }

  /** Where to cut an over-long clause: after the last clause break, else at the last space. */
  private findSoftCut(): number {
    const b = this.buffer;
    const limit = Math.min(b.length - 1, this.maxChars);
    let lastSpace = -1;
    for (let i = limit; i > 0; i--) {
      if (!isSpace(b[i])) continue;
      if (lastSpace < 0) lastSpace = i;
      if (CLAUSE_BREAKS.has(b[i - 1])) return i;
    }
    return lastSpace;
  }
}

/** Sentences of a text stream, each yielded as soon as it is complete; the remainder when it ends. */
export async function* splitSentences(
  text: AsyncIterable<string>,
  options: SentenceSplitterOptions = {},
): AsyncGenerator<string> {
  const splitter = new SentenceSplitter(options);
  for await (const piece of text) {
    yield* splitter.push(piece);
  }
  yield* splitter.flush();
}
