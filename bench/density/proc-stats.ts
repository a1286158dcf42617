/**
 * CPU time and resident memory of other processes, read from Linux /proc: how the parent measures each
 * peer process (one OS process per call) without the peer measuring itself.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** Clock ticks per second for /proc/PID/stat times; 100 on every common Linux build. */
export function clockTicksPerSecond(): number {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number.parseInt(result.stdout ?? '', 10);
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}

/**
 * utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks. The command name (field 2)
 * is in parentheses and may itself contain spaces and parentheses, so fields are counted from the last ')'.
 */
export function parseStatCpuTicks(statLine: string): number {
  const close = statLine.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/PID/stat line: ${statLine.slice(0, 80)}`);
  // After ')': field 3 (state) is index 0, so field n is index n - 3.
  const fields = statLine.slice(close + 2).split(' ');
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot read utime/stime from: ${statLine.slice(0, 80)}`);
  return utime + stime;
}

/** VmRSS of a /proc/PID/status text, in bytes; 0 for a zombie (no VmRSS line). */
export function parseStatusRssBytes(statusText: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  return match ? Number(match[1]) * 1024 : 0;
}

/** CPU seconds (user + system, all threads) a live process has used so far; NaN once it has gone. */
export function processCpuSeconds(pid: number, ticksPerSecond: number): number {
  try {
    return parseStatCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of a live process in bytes; NaN once it has gone. */
export function processRssBytes(pid: number): number {
  try {
    return parseStatusRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return Number.NaN;
  }
}

/**
 * Busy clock ticks of the whole machine, from the first line of /proc/stat (user nice system idle iowait
 * irq softirq steal ...): busy is everything but idle and iowait. The bench subtracts its own processes
 * from the machine's busy time over a phase to show how much CPU other people's work took meanwhile.
 */
export function parseProcStatBusyTicks(procStat: string): number {
  const line = procStat.split('\n', 1)[0];
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu') throw new Error(`not a /proc/stat cpu line: ${line.slice(0, 80)}`);
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1, 9).map(Number);
  return user + nice + system + irq + softirq + (steal || 0);
}

/** CPU seconds the whole machine has been busy (all cores) since boot; NaN off Linux. */
export function machineBusyCpuSeconds(ticksPerSecond: number): number {
  try {
    return parseProcStatBusyTicks(readFileSync('/proc/stat', 'utf8')) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}
