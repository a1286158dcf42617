/** Prints a tinybench run as a table and writes its tasks' latencies to `bench/results/<name>.json`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Bench } from 'tinybench';

export function reportBench(bench: Bench, name: string): void {
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
  const outputDir = new URL('../results/', import.meta.url);
  mkdirSync(outputDir, { recursive: true });
  writeFileSync(
    new URL(`${name}.json`, outputDir),
    `${JSON.stringify({ bench: name, node: process.version, date: new Date().toISOString(), results }, null, 2)}\n`,
  );
}
