/**
 * The top of a V8 `.cpuprofile` (from `node --cpu-prof`) by self time: where a thread really spent its
 * CPU, to explain a missed density target. One profile per thread (the main thread and each worker).
 *
 * Run: npm exec -- node bench/density/profile-top.ts <file-or-folder.cpuprofile> [--top 15]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  selfPercent: number;
}

/** Self time per function (same name and location merged), largest first; idle and GC are kept, they matter. */
export function topBySelfTime(profile: CpuProfile, top: number): { totalMs: number; busyMs: number; entries: ProfileEntry[] } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; it belongs to the sample that was running then.
    const deltaUs = profile.timeDeltas[i + 1] ?? 0;
    const node = nodes.get(profile.samples[i]);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : ` ${basename(url)}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${where}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + deltaUs);
    totalUs += deltaUs;
    if (functionName === '(idle)') idleUs += deltaUs;
  }
  const entries = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), selfPercent: totalUs > 0 ? Math.round((us / totalUs) * 1000) / 10 : 0 }));
  return { totalMs: Math.round(totalUs / 1000), busyMs: Math.round((totalUs - idleUs) / 1000), entries };
}

export function profileFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .map((f) => join(path, f));
}

export function printProfileTops(path: string, top = 15): void {
  for (const file of profileFiles(path)) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const summary = topBySelfTime(profile, top);
    console.log(`${basename(file)}: ${summary.totalMs} ms sampled, ${summary.busyMs} ms busy`);
    console.table(summary.entries);
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 15;
  const paths = args.filter((_, i) => topIndex < 0 || (i !== topIndex && i !== topIndex + 1));
  for (const path of paths) printProfileTops(path, top);
}
