import { RingLayoutError } from './errors.ts';
import {
  DOORBELL_BYTES,
  DOORBELL_CLOSED_I32,
  DOORBELL_COUNTER_I32,
  DOORBELL_I32_SLOTS,
  DOORBELL_MAGIC,
  DOORBELL_MAGIC_I32,
} from './layout.ts';
import { waitOnSlot, waitOnSlotSync, type WaitOutcome } from './wait.ts';

/**
 * One wake-up counter shared by many rings: a media worker serving many calls waits on its doorbell
 * instead of on each ring, and the main thread rings it after writing to any of that worker's rings.
 *
 * Use: `let seen = bell.current()`, drain every ring, then `bell.wait(seen, ms)`. A ring() that
 * happens while draining changes the counter, so the wait returns at once instead of missing it.
 */
export class Doorbell {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer, 0, DOORBELL_I32_SLOTS);
  }

  static create(): Doorbell {
    const buffer = new SharedArrayBuffer(DOORBELL_BYTES);
    Atomics.store(new Int32Array(buffer), DOORBELL_MAGIC_I32, DOORBELL_MAGIC);
    return new Doorbell(buffer);
  }

  static attach(buffer: SharedArrayBuffer): Doorbell {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== DOORBELL_BYTES) {
      throw new RingLayoutError('doorbell', `expected a ${DOORBELL_BYTES}-byte SharedArrayBuffer`);
    }
    if (Atomics.load(new Int32Array(buffer), DOORBELL_MAGIC_I32) !== DOORBELL_MAGIC) {
      throw new RingLayoutError('doorbell', 'magic number mismatch');
    }
    return new Doorbell(buffer);
  }

  /** Counter value to pass to `wait`; it wraps around int32, so only compare it for equality. */
  current(): number {
    return Atomics.load(this.#i32, DOORBELL_COUNTER_I32);
  }

  get closed(): boolean {
    return Atomics.load(this.#i32, DOORBELL_CLOSED_I32) !== 0;
  }

  /** Wakes every waiter. Cheap when nobody waits, so producers may ring after every write. */
  ring(): void {
    Atomics.add(this.#i32, DOORBELL_COUNTER_I32, 1);
    Atomics.notify(this.#i32, DOORBELL_COUNTER_I32);
  }

  /**
   * Never blocks the thread. 'ok' once the counter differs from `lastSeen` (possibly already),
   * 'closed' once the doorbell is closed, else 'timed-out'.
   */
  wait(lastSeen: number, timeoutMs: number): Promise<WaitOutcome> {
    return waitOnSlot(this.#i32, DOORBELL_COUNTER_I32, this.#changedSince(lastSeen), timeoutMs);
  }

  /** Blocking `wait` for worker threads. */
  waitSync(lastSeen: number, timeoutMs: number): WaitOutcome {
    return waitOnSlotSync(this.#i32, DOORBELL_COUNTER_I32, this.#changedSince(lastSeen), timeoutMs);
  }

  /** Tells every waiter, now and later, to stop. Idempotent. */
  close(): void {
    if (Atomics.compareExchange(this.#i32, DOORBELL_CLOSED_I32, 0, 1) !== 0) return;
    this.ring();
  }

  #changedSince(lastSeen: number): () => WaitOutcome | null {
    // Int32 view values are already in int32 range; `| 0` makes a caller's uint-ish value compare too.
    const seen = lastSeen | 0;
    return () => {
      if (this.closed) return 'closed';
      return Atomics.load(this.#i32, DOORBELL_COUNTER_I32) !== seen ? 'ok' : null;
    };
  }
}
