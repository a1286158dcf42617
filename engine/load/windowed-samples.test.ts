import { describe, expect, it } from 'vitest';
import { WindowedSamples } from './windowed-samples.ts';

describe('WindowedSamples', () => {
  it('answers nearest-rank percentiles over the buckets in the window', () => {
    const w = new WindowedSamples({ buckets: 3 });
    expect(w.percentile(95)).toBeNaN();
    for (let v = 1; v <= 100; v++) w.record(v);
    expect(w.percentile(50)).toBe(50);
    expect(w.percentile(95)).toBe(95);
    expect(w.percentile(100)).toBe(100);
    expect(w.count).toBe(100);
  });

  it('drops a bucket once it is older than the window', () => {
    const w = new WindowedSamples({ buckets: 2 });
    w.record(1000);
    w.rotate();
    w.record(10);
    expect(w.percentile(100)).toBe(1000);
    w.rotate();
    w.record(20);
    expect(w.percentile(100)).toBe(20);
    expect(w.count).toBe(2);
  });

  it('samples a full bucket down uniformly and weights it by what it stands for', () => {
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const w = new WindowedSamples({ buckets: 2, bucketCapacity: 100, random });
    // 10 000 values 0..9999 in one bucket (kept: 100) and 10 values of 1e6 in the next.
    for (let v = 0; v < 10_000; v++) w.record(v);
    w.rotate();
    for (let i = 0; i < 10; i++) w.record(1e6);
    expect(w.count).toBe(10_010);
    // The median is ~5000 (sampling error of 100 kept values), not distorted by the small bucket.
    expect(w.percentile(50)).toBeGreaterThan(3500);
    expect(w.percentile(50)).toBeLessThan(6500);
    // The 10 large values are 0.1 % of the window: p99.95 sees them, p99 does not.
    expect(w.percentile(99.95)).toBe(1e6);
    expect(w.percentile(99)).toBeLessThan(10_000);
  });

  it('ignores values that are not finite', () => {
    const w = new WindowedSamples({ buckets: 1 });
    w.record(Number.NaN);
    w.record(Number.POSITIVE_INFINITY);
    expect(w.count).toBe(0);
  });
});
