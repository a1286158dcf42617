import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Doorbell } from './doorbell.ts';
import { RingCapacityError, RingLayoutError } from './errors.ts';
import { READ_INDEX_I64, RING_HEADER_I64_SLOTS, WRITE_INDEX_I64 } from './layout.ts';
import { PcmRing } from './pcm-ring.ts';
import type { WorkerReply, WorkerRequest } from './ring-test-worker.ts';
import { consumeAll, decodeCounter, produceCounter, type PauseKind } from './spsc-harness.ts';

/** Omit applied to each member of a union, so each request keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type RequestBody = WithoutId<WorkerRequest>;

const samples = (...values: number[]): Int16Array => Int16Array.from(values);

function readAll(ring: PcmRing, max: number): number[] {
  const into = new Int16Array(max);
  return Array.from(into.subarray(0, ring.read(into)));
}

/** Resolves true if the promise has settled after a few event-loop turns, without waiting on time. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('PcmRing, one thread', () => {
  it('rejects impossible capacities with a typed error', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      expect(() => PcmRing.create(bad)).toThrow(RingCapacityError);
    }
    try {
      PcmRing.create(0);
    } catch (error) {
      expect((error as RingCapacityError).code).toBe('VE_RING_CAPACITY');
    }
  });

  it('attach shares state with the creator and refuses foreign buffers', () => {
    const ring = PcmRing.create(16);
    const other = PcmRing.attach(ring.buffer);
    expect(other.capacitySamples).toBe(16);
    ring.write(samples(1, 2, 3));
    expect(readAll(other, 8)).toEqual([1, 2, 3]);
    expect(ring.totalReadSamples()).toBe(3);

    expect(() => PcmRing.attach(new SharedArrayBuffer(ring.buffer.byteLength))).toThrow(RingLayoutError);
    expect(() => PcmRing.attach(new SharedArrayBuffer(8))).toThrow(RingLayoutError);
    const truncated = new SharedArrayBuffer(ring.buffer.byteLength - 2);
    new Uint8Array(truncated).set(new Uint8Array(ring.buffer, 0, truncated.byteLength));
    expect(() => PcmRing.attach(truncated)).toThrow(RingLayoutError);
  });

  it('wraps around the end of the data region in both write and read', () => {
    const ring = PcmRing.create(8);
    expect(ring.write(samples(1, 2, 3, 4, 5))).toBe(5);
    expect(readAll(ring, 5)).toEqual([1, 2, 3, 4, 5]);
    // Occupies slots 5, 6, 7, 0, 1, 2.
    expect(ring.write(samples(6, 7, 8, 9, 10, 11))).toBe(6);
    expect(ring.availableSamples()).toBe(6);
    expect(readAll(ring, 4)).toEqual([6, 7, 8, 9]);
    expect(readAll(ring, 10)).toEqual([10, 11]);
    expect(ring.totalWrittenSamples()).toBe(11);
    expect(ring.totalReadSamples()).toBe(11);
    expect(ring.droppedSamples()).toBe(0);
  });

  it('when full, keeps the oldest samples and counts the newest as dropped', () => {
    const ring = PcmRing.create(4);
    expect(ring.write(samples(1, 2, 3, 4, 5, 6))).toBe(4);
    expect(ring.droppedSamples()).toBe(2);
    expect(ring.freeSamples()).toBe(0);
    expect(ring.write(samples(7, 8, 9))).toBe(0);
    expect(ring.droppedSamples()).toBe(5);
    expect(readAll(ring, 2)).toEqual([1, 2]);
    expect(ring.write(samples(10, 11, 12))).toBe(2);
    expect(ring.droppedSamples()).toBe(6);
    expect(readAll(ring, 8)).toEqual([3, 4, 10, 11]);
    expect(ring.totalWrittenSamples()).toBe(6);
  });

  it('keeps exact indices past 2^31 and 2^32 samples', () => {
    for (const start of [2 ** 31 - 3, 2 ** 32 - 3, 2 ** 40 + 5]) {
      const ring = PcmRing.create(6);
      // Fast-forward both indices as if `start` samples had already streamed through.
      const header = new BigInt64Array(ring.buffer, 0, RING_HEADER_I64_SLOTS);
      header[WRITE_INDEX_I64] = BigInt(start);
      header[READ_INDEX_I64] = BigInt(start);
      expect(ring.write(samples(1, 2, 3, 4, 5, 6, 7))).toBe(6);
      expect(readAll(ring, 4)).toEqual([1, 2, 3, 4]);
      expect(ring.write(samples(8, 9, 10))).toBe(3);
      expect(readAll(ring, 10)).toEqual([5, 6, 8, 9, 10]);
      expect(ring.totalWrittenSamples()).toBe(start + 9);
      expect(ring.totalReadSamples()).toBe(start + 9);
      expect(ring.droppedSamples()).toBe(1);
    }
  });

  it('readExact pads with silence and counts the underrun', () => {
    const ring = PcmRing.create(8);
    ring.write(samples(7, 8, 9));
    const frame = new Int16Array(5).fill(-1);
    expect(ring.readExact(frame)).toBe(3);
    expect(Array.from(frame)).toEqual([7, 8, 9, 0, 0]);
    expect(ring.underrunSamples()).toBe(2);
    ring.readExact(frame);
    expect(ring.underrunSamples()).toBe(7);
  });

  it('matches a queue model for any sequence of writes and reads', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), length: fc.nat(40) }),
      fc.record({ kind: fc.constant('read' as const), length: fc.nat(40) }),
      fc.record({ kind: fc.constant('readExact' as const), length: fc.nat(40) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(op, { maxLength: 80 }), (capacity, ops) => {
        const ring = PcmRing.create(capacity);
        const model: number[] = [];
        let next = 0;
        let dropped = 0;
        let underrun = 0;
        for (const { kind, length } of ops) {
          if (kind === 'write') {
            const chunk = new Int16Array(length).map(() => (next++ << 16) >> 16);
            const fits = Math.min(length, capacity - model.length);
            model.push(...chunk.subarray(0, fits));
            dropped += length - fits;
            expect(ring.write(chunk)).toBe(fits);
          } else {
            const into = new Int16Array(length);
            const expected = model.splice(0, length);
            const copied = kind === 'read' ? ring.read(into) : ring.readExact(into);
            expect(copied).toBe(expected.length);
            if (kind === 'readExact') {
              underrun += length - expected.length;
              expected.push(...new Array<number>(length - expected.length).fill(0));
              expect(Array.from(into)).toEqual(expected);
            } else {
              expect(Array.from(into.subarray(0, copied))).toEqual(expected);
            }
          }
          expect(ring.availableSamples()).toBe(model.length);
          expect(ring.freeSamples()).toBe(capacity - model.length);
          expect(ring.droppedSamples()).toBe(dropped);
          expect(ring.underrunSamples()).toBe(underrun);
          expect(ring.totalWrittenSamples() + ring.droppedSamples()).toBe(next);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('PcmRing waiting and closing', () => {
  it('a write wakes a pending waitForData', async () => {
    const ring = PcmRing.create(8);
    const waiting = ring.waitForData(60_000);
    expect(await settledSoon(waiting)).toBe(false);
    ring.write(samples(1));
    expect(await waiting).toBe('ok');
  });

  it('close wakes a pending waitForData with "closed", and is idempotent', async () => {
    const ring = PcmRing.create(8);
    const waiting = ring.waitForData(60_000);
    expect(await settledSoon(waiting)).toBe(false);
    ring.close();
    expect(await waiting).toBe('closed');
    expect(ring.closed).toBe(true);
    ring.close();
    expect(ring.closed).toBe(true);
    expect(PcmRing.attach(ring.buffer).closed).toBe(true);
  });

  it('after close, unread samples still drain, then waits report "closed" and writes count as dropped', async () => {
    const ring = PcmRing.create(8);
    ring.write(samples(4, 5));
    ring.close();
    expect(ring.write(samples(6, 7, 8))).toBe(0);
    expect(ring.droppedSamples()).toBe(3);
    expect(await ring.waitForData(0)).toBe('ok');
    expect(readAll(ring, 8)).toEqual([4, 5]);
    expect(await ring.waitForData(60_000)).toBe('closed');
    expect(ring.waitForDataSync(60_000)).toBe('closed');
  });

  it('waitForData times out on an open, empty ring', async () => {
    const ring = PcmRing.create(8);
    expect(await ring.waitForData(2)).toBe('timed-out');
    expect(await ring.waitForData(-1)).toBe('timed-out');
    expect(ring.waitForDataSync(0)).toBe('timed-out');
  });

  it('a read wakes a producer waiting for space; close wakes it with "closed"', async () => {
    const ring = PcmRing.create(4);
    ring.write(samples(1, 2, 3, 4));
    const waiting = ring.waitForSpace(2, 60_000);
    readAll(ring, 1);
    expect(await settledSoon(waiting)).toBe(false);
    readAll(ring, 1);
    expect(await waiting).toBe('ok');
    expect(await ring.waitForSpace(100, 0)).toBe('timed-out');
    const blocked = ring.waitForSpace(4, 60_000);
    ring.close();
    expect(await blocked).toBe('closed');
  });
});

describe('Doorbell', () => {
  it('ring wakes a pending wait; a stale lastSeen returns at once', async () => {
    const bell = Doorbell.create();
    const seen = bell.current();
    const waiting = bell.wait(seen, 60_000);
    expect(await settledSoon(waiting)).toBe(false);
    Doorbell.attach(bell.buffer).ring();
    expect(await waiting).toBe('ok');
    expect(bell.current()).not.toBe(seen);
    expect(await bell.wait(seen, 60_000)).toBe('ok');
    expect(bell.waitSync(seen, 60_000)).toBe('ok');
    expect(await bell.wait(bell.current(), 1)).toBe('timed-out');
  });

  it('close wakes waiters with "closed" and is idempotent', async () => {
    const bell = Doorbell.create();
    const waiting = bell.wait(bell.current(), 60_000);
    bell.close();
    bell.close();
    expect(await waiting).toBe('closed');
    expect(bell.waitSync(bell.current(), 60_000)).toBe('closed');
  });

  it('attach refuses foreign buffers', () => {
    expect(() => Doorbell.attach(new SharedArrayBuffer(16))).toThrow(RingLayoutError);
    expect(() => Doorbell.attach(new SharedArrayBuffer(4))).toThrow(RingLayoutError);
  });
});

describe('two threads', () => {
  let worker: Worker;
  let nextId = 0;
  const pending = new Map<number, { resolve: (reply: WorkerReply) => void; onWaiting?: (seen: number) => void }>();
  let workerFailure: Error | undefined;

  function ask(request: RequestBody, onWaiting?: (seen: number) => void): Promise<WorkerReply> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (workerFailure) return reject(workerFailure);
      pending.set(id, { resolve, onWaiting });
      worker.postMessage({ ...request, id });
    });
  }

  beforeAll(() => {
    worker = new Worker(new URL('./ring-test-worker.ts', import.meta.url));
    worker.on('message', (reply: WorkerReply) => {
      const entry = pending.get(reply.id);
      if (!entry) return;
      if ('waiting' in reply) return entry.onWaiting?.(reply.seen);
      pending.delete(reply.id);
      entry.resolve(reply);
    });
    worker.on('error', (error) => (workerFailure = error));
  });

  afterAll(async () => {
    await worker.terminate();
  });

  it('a doorbell rung by the main thread wakes a worker blocked in waitSync', async () => {
    const bell = Doorbell.create();
    const reply = await ask({ role: 'doorbell-wait', buffer: bell.buffer, timeoutMs: 30_000 }, () => bell.ring());
    expect(reply).toEqual({ id: expect.any(Number), outcome: 'ok' });
  });

  const pauseKind = fc.constantFrom<PauseKind>(0, 0, 1, 2, 3);
  const scenario = fc.record({
    capacity: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 65, max: 4096 })),
    producerInWorker: fc.boolean(),
    blockingWait: fc.boolean(),
    onFull: fc.constantFrom('drop' as const, 'wait' as const, 'spin' as const),
    chunkSizes: fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 50 }),
    producerPauses: fc.array(pauseKind, { minLength: 1, maxLength: 16 }),
    readSizes: fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 16 }),
    consumerPauses: fc.array(pauseKind, { minLength: 1, maxLength: 16 }),
  });

  it('every sample read is in order, and accepted + dropped == produced with drops exactly the gaps', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const ring = PcmRing.create(s.capacity);
        const stallTimeoutMs = 30_000;
        const producePlan = {
          chunkSizes: s.chunkSizes,
          pauses: s.producerPauses,
          onFull: s.onFull,
          // Only a worker may block; the main thread must keep its event loop turning.
          blockingWait: s.blockingWait && s.producerInWorker,
        };
        let acceptedPerChunk: number[];
        let received: Int16Array;
        if (s.producerInWorker) {
          const consumed = consumeAll(ring, { readSizes: s.readSizes, pauses: s.consumerPauses, blockingWait: false }, stallTimeoutMs);
          const reply = await ask({ role: 'produce', buffer: ring.buffer, plan: producePlan, stallTimeoutMs });
          if ('error' in reply) throw new Error(reply.error);
          acceptedPerChunk = (reply as { acceptedPerChunk: number[] }).acceptedPerChunk;
          received = await consumed;
        } else {
          const consumePlan = { readSizes: s.readSizes, pauses: s.consumerPauses, blockingWait: s.blockingWait };
          const consumed = ask({ role: 'consume', buffer: ring.buffer, plan: consumePlan, stallTimeoutMs });
          acceptedPerChunk = await produceCounter(ring, producePlan, stallTimeoutMs);
          const reply = await consumed;
          if ('error' in reply) throw new Error(reply.error);
          received = (reply as { received: Int16Array }).received;
        }

        const produced = s.chunkSizes.reduce((sum, n) => sum + n, 0);
        const accepted = acceptedPerChunk.reduce((sum, n) => sum + n, 0);
        expect(ring.totalWrittenSamples()).toBe(accepted);
        expect(accepted + ring.droppedSamples()).toBe(produced);
        expect(received.length).toBe(accepted);
        expect(ring.totalReadSamples()).toBe(accepted);

        // Judged from the data alone: strictly increasing stream indices with exactly `dropped` missing.
        const indices = Array.from(received, decodeCounter);
        let gapSamples = 0;
        let expectedNext = 0;
        for (const index of indices) {
          expect(index).toBeGreaterThanOrEqual(expectedNext);
          gapSamples += index - expectedNext;
          expectedNext = index + 1;
        }
        gapSamples += produced - expectedNext;
        expect(gapSamples).toBe(ring.droppedSamples());

        // And the gaps are precisely the refused tail of each chunk (drop newest, never unread data).
        const expectedIndices: number[] = [];
        let chunkStart = 0;
        s.chunkSizes.forEach((size, c) => {
          expect(acceptedPerChunk[c]).toBeLessThanOrEqual(size);
          for (let i = 0; i < acceptedPerChunk[c]; i++) expectedIndices.push(chunkStart + i);
          chunkStart += size;
        });
        expect(indices).toEqual(expectedIndices);
      }),
      { numRuns: 150 },
    );
  });
});
