/**
 * Condition waits over one Int32 "sequence" slot. The waker always changes the slot before
 * notifying, so a waiter that samples the slot, checks its condition, then waits only while the
 * slot still holds the sampled value can never miss a wake-up that raced with its check.
 */

export type WaitOutcome = 'ok' | 'timed-out' | 'closed';

/** Returns the outcome once decided, or null to keep waiting. */
export type WaitCheck = () => WaitOutcome | null;

function deadlineFor(timeoutMs: number): number {
  // NaN or negative means "do not wait": check once and report.
  const ms = Number.isNaN(timeoutMs) || timeoutMs < 0 ? 0 : timeoutMs;
  return performance.now() + ms;
}

/** Never blocks the calling thread: suitable for the main thread's event loop. */
export async function waitOnSlot(i32: Int32Array, slot: number, check: WaitCheck, timeoutMs: number): Promise<WaitOutcome> {
  const deadline = deadlineFor(timeoutMs);
  for (;;) {
    const seen = Atomics.load(i32, slot);
    const outcome = check();
    if (outcome !== null) return outcome;
    const remainingMs = deadline - performance.now();
    if (remainingMs <= 0) return 'timed-out';
    const pending = Atomics.waitAsync(i32, slot, seen, remainingMs);
    if (pending.async) await pending.value;
  }
}

/** Blocks the calling thread with Atomics.wait: for worker threads only. */
export function waitOnSlotSync(i32: Int32Array, slot: number, check: WaitCheck, timeoutMs: number): WaitOutcome {
  const deadline = deadlineFor(timeoutMs);
  for (;;) {
    const seen = Atomics.load(i32, slot);
    const outcome = check();
    if (outcome !== null) return outcome;
    const remainingMs = deadline - performance.now();
    if (remainingMs <= 0) return 'timed-out';
    Atomics.wait(i32, slot, seen, remainingMs);
  }
}
