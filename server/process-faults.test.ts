import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FAULT_EXIT_CODE, survivableFault } from './process-faults.ts';

describe('survivableFault', () => {
  it('knows rtc-node’s finaliser error and EPIPE by their exact shape, and nothing else', () => {
    const napi = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code });
    expect(survivableFault(napi('trying to drop an invalid handle', 'GenericFailure'))).toBe('rtc_invalid_handle');
    expect(survivableFault(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }))).toBe('epipe');
    for (const other of [
      napi('trying to drop an invalid handle'),
      napi('trying to drop an invalid handle', 'InvalidArg'),
      napi('error: trying to drop an invalid handle', 'GenericFailure'),
      napi('handle not found', 'GenericFailure'),
      new TypeError('Cannot read properties of undefined'),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      'trying to drop an invalid handle',
      { message: 'trying to drop an invalid handle', code: 'GenericFailure' },
      { code: 'EPIPE' },
      undefined,
      null,
    ]) {
      expect(survivableFault(other), String((other as Error)?.message ?? other)).toBeNull();
    }
  });
});

/**
 * The handler in a child process of its own: the faults are real uncaught exceptions and rejections,
 * rtc-node's included (a native handle with a made-up id, finalised by the garbage collector).
 */
const CHILD = `
import { installProcessFaultHandlers } from ${JSON.stringify(new URL('./process-faults.ts', import.meta.url).href)};
const scenario = process.argv[1];
const out = (line) => process.stdout.write(JSON.stringify(line) + '\\n');
installProcessFaultHandlers({
  report: (kind, error, fatal) => out({ report: kind, message: String(error?.message ?? error), fatal }),
  close: async () => {
    out({ closing: true });
    if (scenario === 'close-hangs') await new Promise(() => {});
    out({ closed: true });
  },
  closeTimeoutMs: 500,
});
if (scenario === 'rtc-finaliser') {
  const { FfiHandle } = await import('@livekit/rtc-ffi-bindings');
  (() => new FfiHandle(987654321n))();
  for (let i = 0; i < 5; i++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 20));
  }
}
if (scenario === 'epipe') setImmediate(() => { throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }); });
if (scenario === 'bug' || scenario === 'close-hangs') setImmediate(() => { throw new TypeError('x is undefined'); });
if (scenario === 'look-alike') setImmediate(() => { throw new Error('trying to drop an invalid handle'); });
if (scenario === 'rejection') Promise.reject(new Error('nobody waits for me'));
await new Promise((r) => setTimeout(r, 300));
out({ alive: true });
`;

async function runChild(scenario: string): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; elapsedMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, scenario], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const lines = stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, lines, elapsedMs: performance.now() - started };
}

describe('installProcessFaultHandlers in a child process', () => {
  it('survives rtc-node’s native finaliser error, reporting it', async () => {
    const { code, lines } = await runChild('rtc-finaliser');
    expect(lines).toContainEqual({ report: 'uncaught exception', message: 'trying to drop an invalid handle', fatal: false });
    expect(lines.at(-1)).toEqual({ alive: true });
    expect(lines.some((l) => 'closing' in l)).toBe(false);
    expect(code).toBe(0);
  });

  it('survives EPIPE silently', async () => {
    const { code, lines } = await runChild('epipe');
    expect(lines).toEqual([{ alive: true }]);
    expect(code).toBe(0);
  });

  it.each(['bug', 'look-alike', 'rejection'])('closes and exits non-zero on anything else (%s)', async (scenario) => {
    const { code, lines } = await runChild(scenario);
    expect(lines[0]).toMatchObject({ fatal: true });
    expect(lines.slice(1)).toEqual([{ closing: true }, { closed: true }]);
    expect(code).toBe(FAULT_EXIT_CODE);
  });

  it('exits after the close timeout when closing hangs', async () => {
    const { code, lines, elapsedMs } = await runChild('close-hangs');
    expect(lines.slice(0, 2)).toEqual([{ report: 'uncaught exception', message: 'x is undefined', fatal: true }, { closing: true }]);
    expect(lines.some((l) => 'closed' in l)).toBe(false);
    expect(code).toBe(FAULT_EXIT_CODE);
    expect(elapsedMs).toBeLessThan(10_000);
  });
});
