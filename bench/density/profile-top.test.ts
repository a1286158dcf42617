import { describe, expect, it } from 'vitest';
import { topBySelfTime } from './profile-top.ts';

describe('topBySelfTime', () => {
  it('charges each sample interval to the function that was running, merging same-name same-place nodes', () => {
    const frame = (functionName: string, url = 'file:///x/a.ts', lineNumber = 0) => ({ functionName, url, lineNumber });
    const profile = {
      startTime: 0,
      endTime: 100,
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('hot', 'file:///x/a.ts', 9) },
        { id: 3, callFrame: frame('(idle)', '') },
        { id: 4, callFrame: frame('hot', 'file:///x/a.ts', 9) },
      ],
      samples: [2, 3, 4, 2],
      // timeDeltas[i + 1] is how long sample i ran.
      timeDeltas: [0, 10_000, 30_000, 5_000, 0],
    };
    const summary = topBySelfTime(profile, 5);
    expect(summary.totalMs).toBe(45);
    expect(summary.busyMs).toBe(15);
    expect(summary.entries[0]).toEqual({ name: '(idle)', selfMs: 30, selfPercent: 66.7 });
    expect(summary.entries[1]).toEqual({ name: 'hot a.ts:10', selfMs: 15, selfPercent: 33.3 });
  });
});
