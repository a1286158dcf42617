import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonByteLength, jsonDepth } from './validation.ts';

/** A value nested `levels` deep, built without recursion. */
function nested(levels: number, container: 'array' | 'object'): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = container === 'array' ? [value] : { k: value };
  return value;
}

describe('jsonByteLength', () => {
  it('equals the UTF-8 length of JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(jsonByteLength(value)).toBe(Buffer.byteLength(JSON.stringify(value)));
      }),
      { numRuns: 500 },
    );
    expect(jsonByteLength({ 'é"\n': ['😀', null, -0, 1e21, true] })).toBe(Buffer.byteLength(JSON.stringify({ 'é"\n': ['😀', null, -0, 1e21, true] })));
  });

  it('stops past the limit and never recurses', () => {
    expect(jsonByteLength({ a: 'x'.repeat(100) }, 10)).toBeGreaterThan(10);
    expect(jsonByteLength(nested(200_000, 'array'))).toBe(400_001);
  });
});

describe('jsonDepth', () => {
  it('counts the value itself as 1 and scalars as 0, without recursion', () => {
    expect(jsonDepth('x')).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth({ a: [1, { b: [] }] })).toBe(4);
    expect(jsonDepth(nested(8, 'object'))).toBe(8);
    expect(jsonDepth(nested(200_000, 'object'))).toBe(200_000);
    expect(jsonDepth(nested(200_000, 'array'), 8)).toBe(9);
  });
});
