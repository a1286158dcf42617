import { describe, expect, it } from 'vitest';
import { LatencyRecorder } from './latency-recorder.ts';

describe('LatencyRecorder', () => {
  it('answers nearest-rank percentiles over the retained window', () => {
    const recorder = new LatencyRecorder(100);
    for (let i = 1; i <= 100; i++) recorder.record(i);
    expect(recorder.percentile(50)).toBe(50);
    expect(recorder.percentile(99)).toBe(99);
    expect(recorder.percentile(100)).toBe(100);
    for (let i = 0; i < 100; i++) recorder.record(1000);
    expect(recorder.percentile(1)).toBe(1000);
    expect(recorder.count).toBe(200);
    expect(new LatencyRecorder().percentile(50)).toBeNaN();
  });
});
