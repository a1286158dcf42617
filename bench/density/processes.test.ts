/**
 * The two measuring processes end to end, briefly: the engine child prints a result that reflects the
 * audio it was fed, and a peer process follows the parent's start/measure/stop protocol.
 */
import { describe, expect, it } from 'vitest';
import { runEngine } from './engine-runner.ts';
import { runPeers } from './peer-runner.ts';

describe('density processes', () => {
  it('the engine child feeds real-time callers through the engine and reports one JSON result', async () => {
    const result = await runEngine({ calls: 2, backend: 'native', seconds: 2, warmupSeconds: 1, workers: 1, turnWorkers: 1, tickMs: 5, seed: 1 });
    expect(result).toMatchObject({ arch: 'engine', backend: 'native', calls: 2, workers: 1, droppedSamples: 0, workerRestarts: 0 });
    // 2 calls x 2 s of 20 ms frames are about 200 frames; each 32 ms window yields one latency sample.
    expect(result.feeder.framesWritten).toBeGreaterThan(100);
    expect(result.frameLatencyMs.count).toBeGreaterThan(50);
    expect(result.vad.batches).toBeGreaterThan(0);
    expect(result.vad.meanBatchSize).toBeGreaterThanOrEqual(1);
    expect(result.vad.meanBatchSize).toBeLessThanOrEqual(2);
    expect(result.rssMb.mean).toBeGreaterThan(0);
    expect(result.cpuPercentPerCall).toBeGreaterThan(0);
  });

  it('a peer process loads its own models, feeds itself, and is measured from outside', async () => {
    const result = await runPeers({ calls: 1, seconds: 2, warmupSeconds: 1, seed: 1, threads: 1, tickMs: 5 }, () => {});
    expect(result).toMatchObject({ arch: 'peer', backend: 'native', calls: 1 });
    expect(result.frameLatencyMs.count).toBeGreaterThan(25);
    expect(result.cpuPercentPerCall).toBeGreaterThan(0);
    // A process with onnxruntime-node and two sessions is far more than an empty Node process.
    expect(result.idleRssPerProcessMb).toBeGreaterThan(60);
    expect(result.rssPerCallMb).toBeGreaterThan(60);
  });
});
