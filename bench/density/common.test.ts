import { describe, expect, it } from 'vitest';
import { LatencyRecorder } from '../../engine/metrics/latency-recorder.ts';
import { BenchOptionError, latencySummary, loopDelayOverTimerMs, parseBackend, parseCountList, summarise } from './common.ts';

describe('latencySummary', () => {
  it('uses the same nearest-rank percentiles as the engine, so peer and engine numbers compare', () => {
    const values = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) / 10);
    const recorder = new LatencyRecorder();
    for (const v of values) recorder.record(v);
    expect(latencySummary(values)).toEqual(recorder.summary());
  });

  it('is NaN with a zero count when empty', () => {
    expect(latencySummary([])).toEqual({ count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN });
  });
});

describe('options', () => {
  it('parses count lists and rejects anything that is not a count', () => {
    expect(parseCountList('calls', '25, 50,100')).toEqual([25, 50, 100]);
    expect(parseCountList('calls', '')).toEqual([]);
    expect(() => parseCountList('calls', '25,x')).toThrow(BenchOptionError);
    expect(() => parseCountList('calls', '-1')).toThrow(BenchOptionError);
  });

  it('accepts only the engine backends', () => {
    expect(parseBackend('wasm')).toBe('wasm');
    expect(parseBackend('native')).toBe('native');
    expect(() => parseBackend('gpu')).toThrow(BenchOptionError);
  });
});

describe('helpers', () => {
  it('summarise gives mean and max', () => {
    expect(summarise([1, 2, 6])).toEqual({ mean: 3, max: 6 });
  });

  it('loop delay is the excess over the monitor timer, never negative', () => {
    expect(loopDelayOverTimerMs(10.3)).toBeCloseTo(0.3);
    expect(loopDelayOverTimerMs(9.2)).toBe(0);
    expect(loopDelayOverTimerMs(55)).toBe(45);
  });
});
