import { describe, expect, it } from 'vitest';
import { SileroReset } from './silero-reset.ts';

/** 2 s of 32 ms windows: the 63rd window is the first at or past the interval. */
const WINDOWS_PER_INTERVAL = Math.ceil((2 * 16_000) / 512);

describe('SileroReset (Pipecat 1.14 rule)', () => {
  it('clears once 2 s have passed, at the first quiet window after five clearly non-speech ones', () => {
    const reset = new SileroReset();
    const due: number[] = [];
    for (let w = 1; w <= 3 * WINDOWS_PER_INTERVAL; w++) if (reset.afterWindow(0.01, true)) due.push(w);
    expect(due).toEqual([WINDOWS_PER_INTERVAL, 2 * WINDOWS_PER_INTERVAL, 3 * WINDOWS_PER_INTERVAL]);
  });

  it('waits while the VAD is not quiet or the recent windows are not clearly non-speech', () => {
    const reset = new SileroReset();
    for (let w = 1; w < WINDOWS_PER_INTERVAL; w++) expect(reset.afterWindow(0.01, true)).toBe(false);
    // Due now, but the caller is speaking (not quiet): no clear, however low the window scores.
    expect(reset.afterWindow(0.01, false)).toBe(false);
    // Quiet again, but a window at 0.1 or more restarts the run of low windows.
    expect(reset.afterWindow(0.5, true)).toBe(false);
    for (let w = 0; w < 4; w++) expect(reset.afterWindow(0.05, true)).toBe(false);
    expect(reset.afterWindow(0.05, true)).toBe(true);
  });

  it('restarts its interval after another clear, is off at 0, and moves with its call', () => {
    const reset = new SileroReset();
    for (let w = 1; w < WINDOWS_PER_INTERVAL; w++) reset.afterWindow(0, true);
    reset.restart();
    expect(reset.afterWindow(0, true)).toBe(false);
    const moved = new SileroReset();
    moved.importState(reset.exportState());
    for (let w = 2; w < WINDOWS_PER_INTERVAL; w++) expect(moved.afterWindow(0, true)).toBe(false);
    expect(moved.afterWindow(0, true)).toBe(true);
    const off = new SileroReset({ intervalMs: 0 });
    for (let w = 0; w < 5 * WINDOWS_PER_INTERVAL; w++) expect(off.afterWindow(0, true)).toBe(false);
  });
});
