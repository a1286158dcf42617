import { describe, expect, it } from 'vitest';
import { FramePacer, PlayoutClock, type PacedOutput } from './playout-clock.ts';

describe('FramePacer', () => {
  it('makes frames due at real time, leadMs ahead, from the first call', () => {
    const pacer = new FramePacer({ frameMs: 10, leadMs: 20, maxLateMs: 100 });
    let sent = 0;
    for (let t = 500; t <= 1500; t += 7) {
      const due = pacer.due(t);
      pacer.sent(due);
      sent += due;
      expect(sent).toBe(Math.floor((t - 500 + 20) / 10));
    }
  });

  it('skips a stall longer than maxLateMs and starts a new run after restart', () => {
    const pacer = new FramePacer({ frameMs: 10, leadMs: 20, maxLateMs: 100 });
    pacer.sent(pacer.due(0));
    expect(pacer.due(10_000)).toBe(12); // 100 ms late + 20 ms lead, not 1000 frames
    pacer.restart({ cut: true });
    expect(pacer.due(20_000)).toBe(2);
  });

  it('continues a run after an underrun where its frames end, so small pieces faster than real time go out at real time', () => {
    const pacer = new FramePacer({ frameMs: 10, leadMs: 40, maxLateMs: 100 });
    // 20 ms pieces arriving every millisecond: each is sent, runs dry, and the pacer restarts.
    let sent = 0;
    for (let t = 0; t < 100; t++) {
      const n = Math.min(2, pacer.due(t));
      pacer.sent(n);
      sent += n;
      if (n > 0) pacer.restart();
    }
    // 100 ms of wall time: real time plus the 40 ms lead, not 100 pieces' worth (2 s).
    expect(sent).toBe(Math.floor((99 + 40) / 10));
  });

  it('starts a cut run (barge-in, pause) now, whatever was scheduled', () => {
    const pacer = new FramePacer({ frameMs: 10, leadMs: 20, maxLateMs: 100 });
    pacer.sent(pacer.due(0));
    pacer.sent(50); // half a second scheduled ahead
    pacer.restart({ cut: true });
    expect(pacer.due(10)).toBe(2);
  });
});

describe('PlayoutClock', () => {
  it('paces each output on start and on every tick until it has nothing left, and survives a throwing output', async () => {
    const clock = new PlayoutClock(5);
    const calls: string[] = [];
    let remaining = 3;
    const finite: PacedOutput = { pace: () => (calls.push('finite'), --remaining > 0) };
    const throwing: PacedOutput = {
      pace: () => {
        calls.push('throwing');
        if (calls.length > 1) throw new Error('boom');
        return true;
      },
    };
    clock.start(throwing);
    clock.start(finite);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls.filter((c) => c === 'finite')).toHaveLength(3);
    expect(calls.filter((c) => c === 'throwing')).toHaveLength(2);
    const before = calls.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls.length).toBe(before);
  });

  it('does not keep an output that has nothing to send on start', () => {
    const clock = new PlayoutClock(5);
    let calls = 0;
    const idle: PacedOutput = { pace: () => (calls++, false) };
    clock.start(idle);
    clock.start(idle);
    expect(calls).toBe(2);
  });
});
