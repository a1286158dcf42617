import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.ts';

/** The recursive form this replaces; fingerprints stored before must still match. */
function recursive(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(recursive).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${recursive(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

describe('canonicalJson', () => {
  it('writes exactly what the recursive form wrote, for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(recursive(value));
      }),
      { numRuns: 500 },
    );
  });

  it('does not depend on key order, and writes undefined as null', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] })).toBe('{"a":[{"c":null,"d":2}],"b":1}');
    expect(canonicalJson({ a: [{ c: null, d: 2 }], b: 1 })).toBe(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }));
  });

  it('takes a value nested far deeper than the call stack', () => {
    let value: unknown = 0;
    for (let i = 0; i < 100_000; i++) value = { a: [value] };
    expect(() => recursive(value)).toThrow(RangeError);
    const text = canonicalJson(value);
    expect(text.length).toBe(100_000 * '{"a":[]}'.length + 1);
    expect(text.startsWith('{"a":[{"a":[')).toBe(true);
  });
});
