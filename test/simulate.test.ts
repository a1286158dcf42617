/**
 * `npm run simulate` end to end, small: two simulated callers through a real LiveKit server, against
 * the engine exactly as `npm start` runs it. The density figures come from long runs (README); this
 * checks that the command holds its callers, that they are answered, and what it prints and writes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../server/local-livekit.ts';

const dir = mkdtempSync(join(tmpdir(), 've-simulate-test-'));

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/simulate.ts', ...args], { cwd: PROJECT_ROOT, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`simulate did not finish within ${timeoutMs} ms:\n${output.slice(-3000)}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('npm run simulate', () => {
  it('holds two simulated callers through real LiveKit rooms, answers them, and reports it', async () => {
    const results = join(dir, 'simulate.json');
    const { code, output } = await run(['--callers', '2', '--seconds', '15', '--listen-every', '1', '--results', results], 170_000);
    expect(code, output.slice(-3000)).toBe(0);
    expect(output).toContain('calls requested / callers joined');
    const report = JSON.parse(readFileSync(results, 'utf8'));
    expect(report.calls).toMatchObject({ requested: 2, joined: 2, held: 2, failed: 0 });
    expect(report.callers.utterances).toBeGreaterThanOrEqual(2);
    expect(report.callers.botResponses).toBeGreaterThanOrEqual(1);
    expect(report.callers.responseLatencyMs.count).toBeGreaterThanOrEqual(1);
    expect(report.engineMetrics.input_dropped_samples_total).toBe(0);
    expect(report.cpuPercentOfOneCore.engine).toBeGreaterThan(0);
    expect(report.engineRssBytes.end).toBeGreaterThan(0);
    // The load the engine reported over the window (GET /v1/engine), as the README's table shows it.
    expect(output).toContain('load reported');
    expect(report.load).toMatchObject({ admission: false, samples: expect.any(Number), last: { calls: 2, turnDecisionTargetMs: 300 } });
    expect(report.load.samples).toBeGreaterThanOrEqual(10);
    expect(report.load.max).toBeGreaterThan(0);
    expect(report.load.max).toBeLessThanOrEqual(1);
  }, 180_000);
});
