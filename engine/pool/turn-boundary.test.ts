import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { TurnBoundary } from './turn-boundary.ts';

describe('TurnBoundary', () => {
  it('only moves forward, and a worker thread sees what the main thread published', async () => {
    const boundary = TurnBoundary.create();
    expect(boundary.clearedAtSamples()).toBe(0);
    boundary.publish(48_000);
    boundary.publish(16_000); // an older completion never moves it back
    expect(boundary.clearedAtSamples()).toBe(48_000);
    // Past 2^31 samples (37 hours at 16 kHz) too.
    boundary.publish(3_000_000_000);
    const seen = await new Promise<number>((resolve, reject) => {
      const worker = new Worker(
        `const { workerData, parentPort } = require('node:worker_threads');
         parentPort.postMessage(Number(Atomics.load(new BigInt64Array(workerData), 0)));`,
        { eval: true, workerData: boundary.buffer },
      );
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(seen).toBe(3_000_000_000);
    expect(TurnBoundary.attach(boundary.buffer).clearedAtSamples()).toBe(3_000_000_000);
    expect(() => TurnBoundary.attach(new SharedArrayBuffer(4))).toThrow(expect.objectContaining({ code: 'VE_RING_LAYOUT' }));
  });
});
