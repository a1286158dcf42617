/**
 * Shared-memory layouts of the PCM ring and the doorbell. Every slot index lives here and nowhere
 * else, so the producer thread and the consumer thread cannot disagree about where a field is.
 *
 * PCM ring SharedArrayBuffer (all offsets in bytes; header viewed both as Int32Array and, for the
 * 64-bit counters, as BigInt64Array over the same bytes):
 *
 *   line 0 (bytes 0..63) written by the producer only
 *     0   WRITE_INDEX      int64  samples ever accepted (monotonic; stored after the data is copied)
 *     8   DROPPED_SAMPLES  int64  samples refused because the ring was full or closed
 *     16  WRITE_SEQ        int32  bumped after every write and on close; consumers wait on it
 *   line 1 (bytes 64..127) written by the consumer only
 *     64  READ_INDEX       int64  samples ever consumed (monotonic; stored after the data is copied)
 *     72  UNDERRUN_SAMPLES int64  samples readExact() had to fill with silence
 *     80  READ_SEQ         int32  bumped after every read and on close; producers wait on it
 *   line 2 (bytes 128..191) written once or by either side
 *     128 MAGIC            int32  RING_MAGIC, checked by attach()
 *     132 CAPACITY         int32  data region length in samples, fixed at create()
 *     136 CLOSED           int32  0 open, 1 closed (set by either side, never cleared)
 *   192.. DATA             int16[CAPACITY]
 *
 * Why 64-bit counters: at 48 kHz a 32-bit sample counter wraps after about 24.8 hours, and a dropped
 * count after a long overload could exceed 2^31. Int64 slots hold exact counts far beyond any call;
 * they are converted to Number (exact below 2^53, i.e. thousands of years of audio). Because indices
 * never wrap, the capacity need not be a power of two: the slot of sample i is i % CAPACITY.
 *
 * Why three cache lines: the producer's and the consumer's hot fields sit on separate 64-byte lines
 * so each thread's stores do not keep invalidating the line the other thread is polling.
 *
 * Ordering: Atomics.store/load are sequentially consistent, so the plain Int16 copies made before
 * the index store are visible to the other thread once it has loaded that index.
 */

/** Bytes per cache line used to keep producer-owned and consumer-owned slots apart. */
export const CACHE_LINE_BYTES = 64;

/** Int32 slot indices (byte offset / 4). */
export const WRITE_SEQ_I32 = 4;
export const READ_SEQ_I32 = 20;
export const MAGIC_I32 = 32;
export const CAPACITY_I32 = 33;
export const CLOSED_I32 = 34;

/** BigInt64 slot indices (byte offset / 8) over the same header bytes. */
export const WRITE_INDEX_I64 = 0;
export const DROPPED_SAMPLES_I64 = 1;
export const READ_INDEX_I64 = 8;
export const UNDERRUN_SAMPLES_I64 = 9;

/** Header length; the Int16 data region starts here. */
export const RING_HEADER_BYTES = 3 * CACHE_LINE_BYTES;
export const RING_HEADER_I32_SLOTS = RING_HEADER_BYTES / 4;
export const RING_HEADER_I64_SLOTS = RING_HEADER_BYTES / 8;
export const BYTES_PER_SAMPLE = 2;

/** "PCM1": lets attach() reject a buffer that is not a ring (or a ring of an older layout). */
export const RING_MAGIC = 0x50434d31;

/** Upper bound on capacity: keeps the SAB under 2 GiB and CAPACITY within an int32 slot. */
export const MAX_CAPACITY_SAMPLES = 1 << 30;

/** Total SharedArrayBuffer length for a ring of `capacitySamples`. */
export function ringByteLength(capacitySamples: number): number {
  return RING_HEADER_BYTES + capacitySamples * BYTES_PER_SAMPLE;
}

/**
 * Doorbell SharedArrayBuffer: one Int32Array of DOORBELL_I32_SLOTS.
 *   0  COUNTER  int32  bumped (wrapping) by every ring(); waiters compare it with the value they saw
 *   4  CLOSED   int32  0 open, 1 closed
 *   8  MAGIC    int32  DOORBELL_MAGIC, checked by attach()
 */
export const DOORBELL_COUNTER_I32 = 0;
export const DOORBELL_CLOSED_I32 = 1;
export const DOORBELL_MAGIC_I32 = 2;
export const DOORBELL_I32_SLOTS = 4;
export const DOORBELL_BYTES = DOORBELL_I32_SLOTS * 4;
/** "BELL". */
export const DOORBELL_MAGIC = 0x42454c4c;
