/**
 * Cost of moving one audio frame through a PcmRing on one thread (write then read), the per-frame
 * overhead every call pays twice (caller audio in, bot audio out). Cross-thread latency is dominated
 * by the consumer's wake-up, not by these copies, and is not measured here.
 *
 * Run: npm exec -- node bench/ring.bench.ts   (writes bench/results/ring.json)
 */
import { Bench } from 'tinybench';
import { Doorbell } from '../engine/ring/doorbell.ts';
import { PcmRing } from '../engine/ring/pcm-ring.ts';
import { reportBench } from './common/tinybench-report.ts';

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
reportBench(bench, 'ring');
