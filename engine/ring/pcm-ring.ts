import { RingCapacityError, RingLayoutError } from './errors.ts';
import {
  CAPACITY_I32,
  CLOSED_I32,
  DROPPED_SAMPLES_I64,
  MAGIC_I32,
  MAX_CAPACITY_SAMPLES,
  READ_INDEX_I64,
  READ_SEQ_I32,
  RING_HEADER_BYTES,
  RING_HEADER_I32_SLOTS,
  RING_HEADER_I64_SLOTS,
  RING_MAGIC,
  UNDERRUN_SAMPLES_I64,
  WRITE_INDEX_I64,
  WRITE_SEQ_I32,
  ringByteLength,
} from './layout.ts';
import { waitOnSlot, waitOnSlotSync, type WaitOutcome } from './wait.ts';

export type { WaitOutcome } from './wait.ts';

/**
 * Single-producer single-consumer ring of 16-bit PCM samples in a SharedArrayBuffer (layout in
 * `layout.ts`). One thread calls `write`, one thread calls `read`/`readExact`; any thread may
 * inspect counters or `close()`. A full ring never blocks and never overwrites unread audio: the
 * newest samples that do not fit are refused and counted in `droppedSamples()`.
 */
export class PcmRing {
  /** Hand this to `PcmRing.attach` in the other thread (e.g. through `postMessage`). */
  readonly buffer: SharedArrayBuffer;
  readonly capacitySamples: number;
  readonly #i32: Int32Array;
  readonly #i64: BigInt64Array;
  readonly #data: Int16Array;

  private constructor(buffer: SharedArrayBuffer, capacitySamples: number) {
    this.buffer = buffer;
    this.capacitySamples = capacitySamples;
    this.#i32 = new Int32Array(buffer, 0, RING_HEADER_I32_SLOTS);
    this.#i64 = new BigInt64Array(buffer, 0, RING_HEADER_I64_SLOTS);
    this.#data = new Int16Array(buffer, RING_HEADER_BYTES, capacitySamples);
  }

  /** Allocates a new, empty, open ring. */
  static create(capacitySamples: number): PcmRing {
    if (!Number.isInteger(capacitySamples) || capacitySamples < 1 || capacitySamples > MAX_CAPACITY_SAMPLES) {
      throw new RingCapacityError(capacitySamples, MAX_CAPACITY_SAMPLES);
    }
    const buffer = new SharedArrayBuffer(ringByteLength(capacitySamples));
    const header = new Int32Array(buffer, 0, RING_HEADER_I32_SLOTS);
    Atomics.store(header, CAPACITY_I32, capacitySamples);
    // Magic last: an attach() racing with create() in another thread sees either no ring or a whole one.
    Atomics.store(header, MAGIC_I32, RING_MAGIC);
    return new PcmRing(buffer, capacitySamples);
  }

  /** Views a ring created elsewhere (typically in another thread); state is shared, not copied. */
  static attach(buffer: SharedArrayBuffer): PcmRing {
    if (!(buffer instanceof SharedArrayBuffer)) throw new RingLayoutError('PCM ring', 'not a SharedArrayBuffer');
    if (buffer.byteLength < RING_HEADER_BYTES) throw new RingLayoutError('PCM ring', `only ${buffer.byteLength} bytes`);
    const header = new Int32Array(buffer, 0, RING_HEADER_I32_SLOTS);
    if (Atomics.load(header, MAGIC_I32) !== RING_MAGIC) throw new RingLayoutError('PCM ring', 'magic number mismatch');
    const capacitySamples = Atomics.load(header, CAPACITY_I32);
    if (capacitySamples < 1 || buffer.byteLength !== ringByteLength(capacitySamples)) {
      throw new RingLayoutError('PCM ring', `capacity ${capacitySamples} does not match ${buffer.byteLength} bytes`);
    }
    return new PcmRing(buffer, capacitySamples);
  }

  /** True once either side has called `close()`. Unread samples stay readable after close. */
  get closed(): boolean {
    return Atomics.load(this.#i32, CLOSED_I32) !== 0;
  }

  /**
   * Producer side. Copies as many samples as fit and returns that count; the rest (the newest) are
   * counted as dropped, as is everything written after close.
   */
  write(samples: Int16Array): number {
    const requested = samples.length;
    if (requested === 0) return 0;
    if (this.closed) {
      this.#countDropped(requested);
      return 0;
    }
    const capacity = this.capacitySamples;
    const writeIndex = Number(Atomics.load(this.#i64, WRITE_INDEX_I64));
    const readIndex = Number(Atomics.load(this.#i64, READ_INDEX_I64));
    const accepted = Math.min(requested, capacity - (writeIndex - readIndex));
    if (accepted > 0) {
      const start = writeIndex % capacity;
      const firstPart = Math.min(accepted, capacity - start);
      this.#data.set(firstPart === requested ? samples : samples.subarray(0, firstPart), start);
      if (accepted > firstPart) this.#data.set(samples.subarray(firstPart, accepted), 0);
      // Publishing the index after the copies is what makes the copies visible to the consumer.
      Atomics.store(this.#i64, WRITE_INDEX_I64, BigInt(writeIndex + accepted));
      Atomics.add(this.#i32, WRITE_SEQ_I32, 1);
      Atomics.notify(this.#i32, WRITE_SEQ_I32);
    }
    if (accepted < requested) this.#countDropped(requested - accepted);
    return accepted;
  }

  /** Consumer side. Copies up to `into.length` of the oldest unread samples; returns the count. */
  read(into: Int16Array): number {
    const capacity = this.capacitySamples;
    const readIndex = Number(Atomics.load(this.#i64, READ_INDEX_I64));
    const writeIndex = Number(Atomics.load(this.#i64, WRITE_INDEX_I64));
    const copied = Math.min(into.length, writeIndex - readIndex);
    if (copied <= 0) return 0;
    const start = readIndex % capacity;
    const firstPart = Math.min(copied, capacity - start);
    into.set(this.#data.subarray(start, start + firstPart), 0);
    if (copied > firstPart) into.set(this.#data.subarray(0, copied - firstPart), firstPart);
    // The slots are handed back to the producer only after they have been copied out.
    Atomics.store(this.#i64, READ_INDEX_I64, BigInt(readIndex + copied));
    Atomics.add(this.#i32, READ_SEQ_I32, 1);
    Atomics.notify(this.#i32, READ_SEQ_I32);
    return copied;
  }

  /**
   * Consumer side, for paced playout: always fills `into` completely, padding with silence when the
   * ring holds too little, and counts the padding in `underrunSamples()`. Returns samples taken from
   * the ring. An empty `into` or a closed-and-drained ring counts no underrun.
   */
  readExact(into: Int16Array): number {
    const copied = this.read(into);
    if (copied < into.length) {
      into.fill(0, copied);
      if (!this.closed) Atomics.add(this.#i64, UNDERRUN_SAMPLES_I64, BigInt(into.length - copied));
    }
    return copied;
  }

  /**
   * Samples readable now. Exact on the consumer and producer threads (each owns one of the two
   * indices); a third thread may see the two loads straddle a write or read, hence the clamp.
   */
  availableSamples(): number {
    const unread = Number(Atomics.load(this.#i64, WRITE_INDEX_I64)) - Number(Atomics.load(this.#i64, READ_INDEX_I64));
    return Math.min(Math.max(unread, 0), this.capacitySamples);
  }

  /** Samples the producer could write now without dropping. */
  freeSamples(): number {
    return this.capacitySamples - this.availableSamples();
  }

  /** Samples refused by `write` since creation (full ring or closed). */
  droppedSamples(): number {
    return Number(Atomics.load(this.#i64, DROPPED_SAMPLES_I64));
  }

  /** Silence samples `readExact` substituted for missing audio since creation. */
  underrunSamples(): number {
    return Number(Atomics.load(this.#i64, UNDERRUN_SAMPLES_I64));
  }

  /** Samples accepted by `write` since creation; sample k of the stream is offset k. */
  totalWrittenSamples(): number {
    return Number(Atomics.load(this.#i64, WRITE_INDEX_I64));
  }

  /** Samples consumed since creation: the stream offset of the next sample `read` returns. */
  totalReadSamples(): number {
    return Number(Atomics.load(this.#i64, READ_INDEX_I64));
  }

  /**
   * Consumer side, never blocks the thread. 'ok' as soon as any sample is readable (also after
   * close, so the consumer drains what was written); 'closed' once closed and drained.
   */
  waitForData(timeoutMs: number): Promise<WaitOutcome> {
    return waitOnSlot(this.#i32, WRITE_SEQ_I32, this.#dataCheck, timeoutMs);
  }

  /** Blocking `waitForData` for worker threads (Atomics.wait would stall the main event loop). */
  waitForDataSync(timeoutMs: number): WaitOutcome {
    return waitOnSlotSync(this.#i32, WRITE_SEQ_I32, this.#dataCheck, timeoutMs);
  }

  /**
   * Producer side, for producers faster than real time (e.g. TTS) that would rather wait than drop:
   * 'ok' once `minFreeSamples` (capped at capacity) can be written; 'closed' if the ring closes.
   */
  waitForSpace(minFreeSamples: number, timeoutMs: number): Promise<WaitOutcome> {
    return waitOnSlot(this.#i32, READ_SEQ_I32, this.#spaceCheck(minFreeSamples), timeoutMs);
  }

  /** Blocking `waitForSpace` for worker threads. */
  waitForSpaceSync(minFreeSamples: number, timeoutMs: number): WaitOutcome {
    return waitOnSlotSync(this.#i32, READ_SEQ_I32, this.#spaceCheck(minFreeSamples), timeoutMs);
  }

  /** Marks the ring closed and wakes every waiter on both sides. Idempotent; safe from either thread. */
  close(): void {
    if (Atomics.compareExchange(this.#i32, CLOSED_I32, 0, 1) !== 0) return;
    Atomics.add(this.#i32, WRITE_SEQ_I32, 1);
    Atomics.notify(this.#i32, WRITE_SEQ_I32);
    Atomics.add(this.#i32, READ_SEQ_I32, 1);
    Atomics.notify(this.#i32, READ_SEQ_I32);
  }

  #countDropped(samples: number): void {
    Atomics.add(this.#i64, DROPPED_SAMPLES_I64, BigInt(samples));
  }

  readonly #dataCheck = (): WaitOutcome | null => {
    if (this.availableSamples() > 0) return 'ok';
    return this.closed ? 'closed' : null;
  };

  #spaceCheck(minFreeSamples: number): () => WaitOutcome | null {
    const needed = Math.min(Math.max(minFreeSamples, 1), this.capacitySamples);
    return () => {
      if (this.closed) return 'closed';
      return this.freeSamples() >= needed ? 'ok' : null;
    };
  }
}
