/**
 * A Python virtual environment with Pipecat's own turn-taking code, for the reference tests in this
 * folder: `pipecat-ai` at the version the model manifest pins (the wheel the Smart Turn model comes
 * from), and the pinned packages of `requirements.txt`, all from PyPI through pip. Cached under
 * `.cache/pipecat-venv/`, keyed by everything that shapes it, so only the first run pays (about 15 s).
 *
 * Run directly (`node test/pipecat/venv.ts`) to build it ahead of the tests, as `.ci/run` does.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODELS } from '../../models/manifest.ts';
import { cacheDir } from '../support/process.ts';

const REQUIREMENTS_PATH = new URL('./requirements.txt', import.meta.url);

/** `pipecat-ai==X.Y.Z`, from the manifest's pip source of the Smart Turn model. */
export function pinnedPipecatRequirement(): string {
  const source = MODELS['smart-turn-v3.2'].sources.find((s) => s.kind === 'pip');
  if (!source || source.kind !== 'pip') throw new Error('models/manifest.ts has no pip source for smart-turn-v3.2');
  return source.requirement;
}

function run(command: string, args: string[], what: string): void {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error || result.status !== 0) {
    const detail = result.error?.message ?? `${result.stderr}\n${result.stdout}`.trim().slice(-3000);
    throw new Error(`${what} failed (${command} ${args.join(' ')}):\n${detail}`);
  }
}

/** Path of the environment's python, building the environment first when it is missing or stale. */
export function ensurePipecatVenv(): string {
  const requirements = readFileSync(REQUIREMENTS_PATH, 'utf8');
  const pipecat = pinnedPipecatRequirement();
  const key = createHash('sha256').update(requirements).update(pipecat).digest('hex').slice(0, 16);
  const root = cacheDir('pipecat-venv');
  const dir = join(root, key);
  const python = join(dir, 'bin', 'python');
  if (existsSync(join(dir, 'READY'))) return python;

  const base = process.env.PYTHON ?? 'python3';
  // Built beside its final place and renamed, so that a concurrent or interrupted build never leaves
  // a half-made environment that looks ready.
  const scratch = `${dir}.${process.pid}.tmp`;
  rmSync(scratch, { recursive: true, force: true });
  try {
    run(base, ['-m', 'venv', scratch], 'creating the Python virtual environment (Debian: apt-get install -y python3-venv)');
    // Only `python` is used afterwards (never the scripts whose shebangs name the scratch path), and a
    // venv's python finds its packages relative to itself, so the folder can be renamed when done.
    const pip = [join(scratch, 'bin', 'python'), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '--only-binary=:all:'];
    run(pip[0], [...pip.slice(1), '-r', fileURLToPath(REQUIREMENTS_PATH)], 'installing the pinned requirements from PyPI');
    run(pip[0], [...pip.slice(1), '--no-deps', pipecat], `installing ${pipecat} from PyPI`);
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(scratch, dir);
  writeFileSync(join(dir, 'READY'), `${pipecat}\n${requirements}`);
  return python;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(ensurePipecatVenv());
}
