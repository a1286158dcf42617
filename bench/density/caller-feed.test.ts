import { describe, expect, it } from 'vitest';
import { framesDue, LoopingAudio, RealTimeFeeder } from './caller-feed.ts';

describe('framesDue', () => {
  it('counts frame k as due at phase + k * frame period', () => {
    expect(framesDue(0, 5, 20)).toBe(0);
    expect(framesDue(4.9, 5, 20)).toBe(0);
    expect(framesDue(5, 5, 20)).toBe(1);
    expect(framesDue(24.9, 5, 20)).toBe(1);
    expect(framesDue(25, 5, 20)).toBe(2);
    expect(framesDue(1000, 0, 20)).toBe(51);
  });
});

describe('LoopingAudio', () => {
  it('yields the audio from its offset onwards and wraps around the end without a gap', () => {
    const pcm = Int16Array.from({ length: 10 }, (_, i) => i);
    const audio = new LoopingAudio(pcm, 4, 7);
    const frames = [0, 1, 2, 3, 4].map(() => Array.from(audio.next()));
    expect(frames.flat()).toEqual([7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6]);
  });

  it('handles audio shorter than one frame', () => {
    const audio = new LoopingAudio(Int16Array.of(1, 2, 3), 7, 0);
    expect(Array.from(audio.next())).toEqual([1, 2, 3, 1, 2, 3, 1]);
    expect(audio.offsetSamples).toBe(1);
  });
});

describe('RealTimeFeeder', () => {
  function fakeClock() {
    let nowMs = 1000;
    return { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
  }

  it('writes exactly the frames due at each tick, for every caller at its own phase', () => {
    const clock = fakeClock();
    const feeder = new RealTimeFeeder({ frameMs: 20, tickMs: 5, now: clock.now });
    const written = [0, 0, 0];
    const phases = [0, 7.5, 19];
    phases.forEach((phase, i) => feeder.add(phase, () => written[i]++));
    feeder.start();
    feeder.stop(); // drive by hand from here on
    for (let t = 0; t < 200; t++) {
      clock.advance(5);
      feeder.tick();
      const elapsed = (t + 1) * 5;
      expect(written).toEqual(phases.map((phase) => framesDue(elapsed, phase, 20)));
    }
    expect(feeder.stats().lateFrames).toBe(0);
    expect(feeder.stats().lagMs.max).toBeLessThanOrEqual(5);
  });

  it('catches up after a late tick instead of losing time, and counts the frames it wrote late', () => {
    const clock = fakeClock();
    const feeder = new RealTimeFeeder({ frameMs: 20, tickMs: 5, now: clock.now });
    let written = 0;
    feeder.add(0, () => written++);
    feeder.start();
    feeder.stop();
    clock.advance(5);
    feeder.tick();
    expect(written).toBe(1);
    clock.advance(95); // a stalled event loop: 100 ms since the start
    feeder.tick();
    expect(written).toBe(framesDue(100, 0, 20));
    // Frames due at 20, 40, 60 and 80 ms were written at 100 ms: a frame period late or more.
    expect(feeder.stats().lateFrames).toBe(4);
    expect(feeder.stats().lagMs.max).toBe(80);
  });

  it('does not drift: after irregular ticks the count is still what the start time says', () => {
    const clock = fakeClock();
    const feeder = new RealTimeFeeder({ frameMs: 20, tickMs: 5, now: clock.now });
    let written = 0;
    feeder.add(3, () => written++);
    feeder.start();
    feeder.stop();
    let elapsed = 0;
    for (let i = 0; i < 500; i++) {
      const step = 1 + ((i * 7) % 13); // 1..13 ms, never a whole number of frames
      clock.advance(step);
      elapsed += step;
      feeder.tick();
    }
    expect(written).toBe(framesDue(elapsed, 3, 20));
    expect(feeder.stats().framesWritten).toBe(written);
  });

  it('runs on a real timer and writes about one frame per period per caller', async () => {
    const feeder = new RealTimeFeeder({ frameMs: 20, tickMs: 5 });
    let a = 0;
    let b = 0;
    feeder.add(0, () => a++);
    feeder.add(10, () => b++);
    const started = performance.now();
    feeder.start();
    await new Promise((r) => setTimeout(r, 200));
    feeder.stop();
    const elapsed = performance.now() - started;
    const after = [a, b];
    await new Promise((r) => setTimeout(r, 50));
    // Nothing is written after stop(), and never more than is due.
    expect([a, b]).toEqual(after);
    expect(a).toBeGreaterThan(0);
    expect(a).toBeLessThanOrEqual(framesDue(elapsed, 0, 20));
    expect(b).toBeLessThanOrEqual(framesDue(elapsed, 10, 20));
  });

  it('rejects a phase outside the frame period', () => {
    const feeder = new RealTimeFeeder({ frameMs: 20 });
    expect(() => feeder.add(20, () => {})).toThrow(RangeError);
    expect(() => feeder.add(-1, () => {})).toThrow(RangeError);
  });
});
