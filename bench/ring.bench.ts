/**
 * Cost of moving one audio frame through a PcmRing on one thread (write then read), the per-frame
 * overhead every call pays twice (caller audio in, bot audio out). Cross-thread latency is dominated
 * by the consumer's wake-up, not by these copies, and is not measured here.
 *
 * Run: npm exec -- node bench/ring.bench.ts   (writes bench/results/ring.json)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { Doorbell } from '../engine/ring/doorbell.ts';
import { PcmRing } from '../engine/ring/pcm-ring.ts';

const FRAME_DURATION_MS = 20;
const RING_DURATION_MS = 200;

interface Case {
  name: string;
  sampleRate: number;
  op: 'read' | 'readExact';
}

const cases: Case[] = [
  { name: 'write+read 20 ms @ 48 kHz', sampleRate: 48_000, op: 'read' },
  { name: 'write+readExact 20 ms @ 48 kHz', sampleRate: 48_000, op: 'readExact' },
  { name: 'write+read 20 ms @ 16 kHz', sampleRate: 16_000, op: 'read' },
];

const bench = new Bench({ name: 'PcmRing', time: 500, warmup: true });
for (const c of cases) {
  const frameSamples = (c.sampleRate * FRAME_DURATION_MS) / 1000;
  // A capacity that is not a multiple of the frame makes frames straddle the wrap point regularly.
  const ring = PcmRing.create((c.sampleRate * RING_DURATION_MS) / 1000 + 7);
  const frame = new Int16Array(frameSamples).map((_, i) => i);
  const into = new Int16Array(frameSamples);
  bench.add(c.name, () => {
    ring.write(frame);
    if (c.op === 'read') ring.read(into);
    else ring.readExact(into);
  });
}
const bell = Doorbell.create();
bench.add('doorbell ring, no waiter', () => bell.ring());

await bench.run();
console.log(bench.name);
console.table(bench.table());

const results = bench.tasks.map((task) => {
  const result = task.result;
  if (result.state !== 'completed') return { name: task.name, state: result.state };
  return {
    name: task.name,
    state: result.state,
    latencyMeanNs: Math.round(result.latency.mean * 1e6),
    latencyP50Ns: Math.round(result.latency.p50 * 1e6),
    latencyP99Ns: Math.round(result.latency.p99 * 1e6),
    opsPerSecond: Math.round(result.throughput.mean),
    samplesCount: result.latency.samplesCount,
  };
});
const outputDir = new URL('./results/', import.meta.url);
mkdirSync(outputDir, { recursive: true });
writeFileSync(
  new URL('ring.json', outputDir),
  `${JSON.stringify({ bench: 'ring', node: process.version, date: new Date().toISOString(), results }, null, 2)}\n`,
);
