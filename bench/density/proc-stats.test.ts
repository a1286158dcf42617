import { describe, expect, it } from 'vitest';
import { clockTicksPerSecond, parseProcStatBusyTicks, parseStatCpuTicks, parseStatusRssBytes, processCpuSeconds, processRssBytes } from './proc-stats.ts';

describe('parseStatCpuTicks', () => {
  it('adds utime and stime, counting fields after a command name with spaces and parentheses', () => {
    // Fields 3.. after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const line = '4242 (node (peer) 1) S 1 4242 4242 0 -1 4194304 100 0 0 0 1234 567 0 0 20 0 11 0 999 1000 2000';
    expect(parseStatCpuTicks(line)).toBe(1234 + 567);
  });

  it('rejects text that is not a stat line', () => {
    expect(() => parseStatCpuTicks('garbage')).toThrow();
  });
});

describe('parseStatusRssBytes', () => {
  it('reads VmRSS in kB as bytes', () => {
    expect(parseStatusRssBytes('Name:\tnode\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t11\n')).toBe(123456 * 1024);
  });

  it('is 0 for a zombie, which has no VmRSS line', () => {
    expect(parseStatusRssBytes('Name:\tnode\nState:\tZ (zombie)\n')).toBe(0);
  });
});

describe.runIf(process.platform === 'linux')('live /proc readings', () => {
  it('reads this process: CPU seconds that only grow, and an RSS close to what Node reports', () => {
    const ticks = clockTicksPerSecond();
    const before = processCpuSeconds(process.pid, ticks);
    let x = 0;
    for (let i = 0; i < 2e7; i++) x += Math.sqrt(i);
    expect(x).toBeGreaterThan(0);
    const after = processCpuSeconds(process.pid, ticks);
    expect(Number.isFinite(before)).toBe(true);
    expect(after).toBeGreaterThanOrEqual(before);
    const rss = processRssBytes(process.pid);
    const own = process.memoryUsage.rss();
    expect(rss / own).toBeGreaterThan(0.8);
    expect(rss / own).toBeLessThan(1.25);
  });

  it('gives NaN for a process that does not exist', () => {
    expect(processCpuSeconds(2 ** 22 + 1, 100)).toBeNaN();
    expect(processRssBytes(2 ** 22 + 1)).toBeNaN();
  });
});

describe('parseProcStatBusyTicks', () => {
  it('counts user, nice, system, irq, softirq and steal, not idle or iowait', () => {
    const text = 'cpu  100 5 50 9000 40 3 2 7 0 0\ncpu0 50 2 25 4500 20 1 1 3 0 0\n';
    expect(parseProcStatBusyTicks(text)).toBe(100 + 5 + 50 + 3 + 2 + 7);
  });
});
