/**
 * Which call a media worker is processing at this moment, in shared memory: a worker that dies cannot
 * say whose audio killed it, but the pool can read what it last wrote here.
 *
 * Layout: one Int32 at index ACTIVITY_CALL_TAG_I32, the pool-assigned tag of the call whose audio the
 * worker is working on (resampling, windowing, feature extraction), or NO_CALL_TAG outside per-call
 * work, including the batched VAD run, which serves every call at once.
 */
const ACTIVITY_CALL_TAG_I32 = 0;
const ACTIVITY_I32_SLOTS = 1;
export const NO_CALL_TAG = 0;

export class WorkerActivity {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer, 0, ACTIVITY_I32_SLOTS);
  }

  static create(): WorkerActivity {
    return new WorkerActivity(new SharedArrayBuffer(ACTIVITY_I32_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  }

  static attach(buffer: SharedArrayBuffer): WorkerActivity {
    return new WorkerActivity(buffer);
  }

  /** Worker side: from now on, work is on this call's audio. */
  enter(callTag: number): void {
    Atomics.store(this.#i32, ACTIVITY_CALL_TAG_I32, callTag);
  }

  /** Worker side: work that belongs to no single call. */
  leave(): void {
    Atomics.store(this.#i32, ACTIVITY_CALL_TAG_I32, NO_CALL_TAG);
  }

  /** Pool side: the call tag last entered and not left. */
  current(): number {
    return Atomics.load(this.#i32, ACTIVITY_CALL_TAG_I32);
  }
}
