/**
 * Load test of the control plane on loopback: a bounded loop of concurrent fetch() workers (autocannon is
 * not installed) against the read endpoints and call creation, with the real embedded store, outbox and a
 * real LiveKit server (room creation is part of POST /v1/calls). Prints a table and writes
 * bench/results/api-load.json. The load generator runs in the same process as the app (one event loop
 * for both), so the figures are a lower bound for the server alone.
 *
 *   node bench/api-load.ts [--connections 50] [--duration-s 10]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { startHarness } from '../server/testing/harness.ts';
import { startLiveKitServer } from '../test/support/livekit-server.ts';

const { values } = parseArgs({
  options: { connections: { type: 'string', default: '50' }, 'duration-s': { type: 'string', default: '10' } },
});
const connections = Number(values.connections);
const durationMs = Number(values['duration-s']) * 1000;

interface PhaseResult {
  name: string;
  connections: number;
  durationS: number;
  requests: number;
  non2xx: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function phase(name: string, makeRequest: (i: number) => Promise<Response>): Promise<PhaseResult> {
  const latenciesMs: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let counter = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await makeRequest(counter++);
        await res.arrayBuffer();
        if (res.status >= 300) non2xx++;
      } catch {
        errors++;
      }
      latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsedS = (performance.now() - started) / 1000;
  latenciesMs.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    name,
    connections,
    durationS: round(elapsedS),
    requests: latenciesMs.length,
    non2xx,
    errors,
    rps: Math.round(latenciesMs.length / elapsedS),
    p50Ms: round(percentile(latenciesMs, 50)),
    p90Ms: round(percentile(latenciesMs, 90)),
    p99Ms: round(percentile(latenciesMs, 99)),
    maxMs: round(latenciesMs.at(-1) ?? Number.NaN),
  };
}

const livekit = await startLiveKitServer();
const engine = new FakeEngine({ maxCalls: 1_000_000 });
const h = await startHarness({ livekit, engine, env: { RATE_LIMIT_MAX: '1000000000' } });
try {
  const seeded: string[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await h.api('/v1/calls', { method: 'POST', json: { metadata: { seed: i } } });
    seeded.push(((await res.json()) as { callId: string }).callId);
  }
  const results: PhaseResult[] = [];
  results.push(await phase('GET /v1/calls/:id', (i) => h.api(`/v1/calls/${seeded[i % seeded.length]}`)));
  results.push(await phase('GET /v1/calls?limit=20', () => h.api('/v1/calls?limit=20')));
  results.push(await phase('POST /v1/calls', (i) => h.api('/v1/calls', { method: 'POST', json: { metadata: { load: i } } })));

  console.table(results);
  const report = {
    benchmark: 'api-load',
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    store: 'embedded (node:sqlite)',
    livekit: 'real server on loopback',
    results,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/api-load.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
  console.log('wrote bench/results/api-load.json');
} finally {
  await h.close();
  await livekit.stop();
}
