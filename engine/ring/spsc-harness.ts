/**
 * Test harness shared by pcm-ring.test.ts and its worker thread: a producer that writes a counter
 * pattern and a consumer that drains until close, each pausing as a plan says, so the same code
 * drives either side from either thread.
 */
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import type { PcmRing } from './pcm-ring.ts';

/** 0: none, 1: busy-spin a few microseconds, 2: yield to the event loop, 3: sleep about 1 ms. */
export type PauseKind = 0 | 1 | 2 | 3;

export interface ProducePlan {
  chunkSizes: number[];
  pauses: PauseKind[];
  /**
   * What to do when a chunk does not fit: 'drop' writes anyway and lets the ring count the drop;
   * 'wait' sleeps in waitForSpace; 'spin' polls freeSamples(). The last two keep both threads busy
   * on the same slots, which is where a premature index store shows up as corrupted samples.
   */
  onFull: 'drop' | 'wait' | 'spin';
  /** Wait with Atomics.wait (worker threads only) instead of Atomics.waitAsync. */
  blockingWait: boolean;
}

export interface ConsumePlan {
  readSizes: number[];
  pauses: PauseKind[];
  /** Wait with Atomics.wait (worker threads only) instead of Atomics.waitAsync. */
  blockingWait: boolean;
}

/** Stream sample k carries k modulo 2^16; unambiguous while a run produces fewer than 65 536 samples. */
export function counterSample(streamIndex: number): number {
  return (streamIndex << 16) >> 16;
}

export function decodeCounter(sample: number): number {
  return sample & 0xffff;
}

async function pause(kind: PauseKind): Promise<void> {
  if (kind === 1) {
    const until = performance.now() + 0.02;
    while (performance.now() < until) {
      // spin: lets the other thread run against a busy, not a sleeping, peer
    }
  } else if (kind === 2) {
    await yieldToLoop();
  } else if (kind === 3) {
    await sleep(1);
  }
}

/** Writes every chunk of the plan, then closes the ring. Returns what `write` accepted per chunk. */
export async function produceCounter(ring: PcmRing, plan: ProducePlan, stallTimeoutMs: number): Promise<number[]> {
  const acceptedPerChunk: number[] = [];
  let streamIndex = 0;
  for (let c = 0; c < plan.chunkSizes.length; c++) {
    const chunk = new Int16Array(plan.chunkSizes[c]);
    for (let i = 0; i < chunk.length; i++) chunk[i] = counterSample(streamIndex + i);
    streamIndex += chunk.length;
    const needed = Math.min(chunk.length, ring.capacitySamples);
    if (plan.onFull === 'spin') {
      // Safe only because the consumer runs in another thread; the deadline turns a dead peer into an error.
      const deadline = performance.now() + stallTimeoutMs;
      while (ring.freeSamples() < needed) {
        if (performance.now() > deadline) throw new Error(`producer spun ${stallTimeoutMs} ms without free space`);
      }
    } else if (plan.onFull === 'wait' && needed > 0) {
      const outcome = plan.blockingWait ? ring.waitForSpaceSync(needed, stallTimeoutMs) : await ring.waitForSpace(needed, stallTimeoutMs);
      if (outcome !== 'ok') throw new Error(`producer waiting for space got ${outcome}`);
    }
    acceptedPerChunk.push(ring.write(chunk));
    await pause(plan.pauses[c % plan.pauses.length]);
  }
  ring.close();
  return acceptedPerChunk;
}

/** Reads until the ring is closed and drained; returns every sample in the order read. */
export async function consumeAll(ring: PcmRing, plan: ConsumePlan, stallTimeoutMs: number): Promise<Int16Array> {
  const received: number[] = [];
  for (let step = 0; ; step++) {
    const into = new Int16Array(plan.readSizes[step % plan.readSizes.length]);
    const copied = ring.read(into);
    for (let i = 0; i < copied; i++) received.push(into[i]);
    if (copied === 0) {
      const outcome = plan.blockingWait ? ring.waitForDataSync(stallTimeoutMs) : await ring.waitForData(stallTimeoutMs);
      if (outcome === 'closed') break;
      if (outcome === 'timed-out') throw new Error(`consumer stalled ${stallTimeoutMs} ms with the ring open and empty`);
    }
    await pause(plan.pauses[step % plan.pauses.length]);
  }
  return Int16Array.from(received);
}
