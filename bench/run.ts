/**
 * `npm run bench -- <name> [options]` runs `bench/<name>.ts` or `bench/<name>.bench.ts` in a child Node
 * process (its own heap, and its own exit code), passing the remaining options through.
 * With no name it lists the benchmarks.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('./', import.meta.url));
const [name, ...rest] = process.argv.slice(2);

function available(): string[] {
  return readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.test.ts'))
    .map((f) => f.replace(/(\.bench)?\.ts$/, ''))
    .sort();
}

if (name === undefined || name.startsWith('-')) {
  console.error(`usage: npm run bench -- <name> [options]\nbenchmarks: ${available().join(', ')}`);
  process.exit(name === undefined ? 0 : 2);
}

const candidates = [`${name}.ts`, `${name}.bench.ts`].map((f) => fileURLToPath(new URL(f, import.meta.url)));
const file = candidates.find((f) => existsSync(f));
if (file === undefined || name.includes('/') || name === 'run') {
  console.error(`no benchmark "${name}"; benchmarks: ${available().join(', ')}`);
  process.exit(2);
}
const result = spawnSync(process.execPath, [file, ...rest], { stdio: 'inherit' });
process.exit(result.status ?? 1);
