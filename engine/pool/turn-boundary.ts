/**
 * One call's latest turn completion, shared between the main thread (the only writer: its turn detector
 * decides completions) and the call's media worker (the reader: its turn window must not reach back past
 * a completed turn). Shared memory rather than a message, so that the order is the audio's: the main
 * thread publishes before it writes any later caller audio to the ring, and the worker's atomic read of
 * the ring's write index makes the publication visible before it sees that audio.
 *
 * Layout: one BigInt64 slot (8 bytes) holding the 16 kHz stream position where the last completed
 * turn's audio ends; 0 before the first completion. Positions only grow.
 */
import { RingLayoutError } from '../ring/errors.ts';

const TURN_BOUNDARY_BYTES = 8;
const CLEARED_AT_SLOT = 0;

export class TurnBoundary {
  readonly buffer: SharedArrayBuffer;
  readonly #slot: BigInt64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#slot = new BigInt64Array(buffer, 0, 1);
  }

  static create(): TurnBoundary {
    return new TurnBoundary(new SharedArrayBuffer(TURN_BOUNDARY_BYTES));
  }

  static attach(buffer: SharedArrayBuffer): TurnBoundary {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== TURN_BOUNDARY_BYTES) {
      throw new RingLayoutError('turn boundary', `expected a ${TURN_BOUNDARY_BYTES}-byte SharedArrayBuffer`);
    }
    return new TurnBoundary(buffer);
  }

  /** Main thread: a turn completed; its audio ends at `clearedAtSamples`. Earlier positions are ignored. */
  publish(clearedAtSamples: number): void {
    const position = BigInt(Math.max(0, Math.floor(clearedAtSamples)));
    if (position > Atomics.load(this.#slot, CLEARED_AT_SLOT)) Atomics.store(this.#slot, CLEARED_AT_SLOT, position);
  }

  /** Worker: where the last completed turn's audio ends (0 before any). */
  clearedAtSamples(): number {
    return Number(Atomics.load(this.#slot, CLEARED_AT_SLOT));
  }
}
