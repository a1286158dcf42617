import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AudioHistory } from './audio-history.ts';

describe('AudioHistory', () => {
  it('returns the most recent samples in order whatever the chunking', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 40 }), fc.integer({ min: 1, max: 80 }), (capacity, chunkSizes, want) => {
        const history = new AudioHistory(capacity);
        let next = 0;
        for (const size of chunkSizes) {
          const chunk = Float32Array.from({ length: size }, () => next++);
          history.append(chunk);
        }
        const got = Array.from(history.latest(want));
        const expectedLength = Math.min(want, capacity, next);
        const expected = Array.from({ length: expectedLength }, (_, i) => next - expectedLength + i);
        expect(got).toEqual(expected);
        expect(history.totalSamples).toBe(next);

        const restored = AudioHistory.restore(capacity, history.snapshot());
        expect(Array.from(restored.latest(want))).toEqual(expected);
        restored.append(Float32Array.of(next));
        expect(Array.from(restored.latest(1))).toEqual([next]);
        expect(restored.totalSamples).toBe(next + 1);
      }),
    );
  });

  it('returns a stream range clipped to what it holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: -20, max: 220 }), fc.integer({ min: 0, max: 100 }), (capacity, total, start, length) => {
        const history = new AudioHistory(capacity);
        history.append(Float32Array.from({ length: total }, (_, i) => i));
        const end = start + length;
        const from = Math.max(start, total - Math.min(capacity, total));
        const to = Math.min(end, total);
        const expected = to > from ? Array.from({ length: to - from }, (_, i) => from + i) : [];
        expect(Array.from(history.range(start, end))).toEqual(expected);
      }),
    );
  });
});
