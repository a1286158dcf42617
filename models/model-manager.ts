/**
 * Finds a verified copy of each model on disk. Order: a configured path, the local cache, the sources in
 * the manifest (an npm package file, Hugging Face only when `allowHub`, the pipecat-ai wheel through
 * pip). Every candidate is checksum-verified before it is returned; downloads land in the cache through
 * a temporary file and an atomic rename, so concurrent resolvers never see a half-written model.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VoiceError } from '../engine/errors.ts';
import { MODELS, isModelId, type HubSource, type ModelEntry, type PipWheelSource } from './manifest.ts';

/** Root of the project (the folder holding `models/`). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Default cache for downloaded models; gitignored. */
export const DEFAULT_CACHE_DIR = join(PROJECT_ROOT, '.cache', 'models');

export interface ResolveModelOptions {
  /** A file the operator points at (from configuration). Tried first; a checksum mismatch is fatal. */
  modelPath?: string;
  /** Defaults to `<project>/.cache/models`. */
  cacheDir?: string;
  /** Allow downloading from Hugging Face. Off by default: tests and CI never contact model hubs. */
  allowHub?: boolean;
  /** Allow `pip download` of the wheel that ships the model. Default true (pip is an ordinary registry client). */
  allowPip?: boolean;
  /** Python interpreter used for pip and for reading the wheel. Default `python3`. */
  pythonCommand?: string;
  /** Upper bound for one pip download. Default 300 000 ms. */
  pipTimeoutMs?: number;
  /** Progress messages (which source was used, what was downloaded). */
  log?: (msg: string) => void;
}

/** A file exists but its SHA-256 is not the one the manifest pins. */
export class ModelChecksumError extends VoiceError {
  readonly filePath: string;
  readonly expectedSha256: string;
  readonly actualSha256: string;

  constructor(filePath: string, expectedSha256: string, actualSha256: string) {
    super(
      'VE_MODEL_CHECKSUM',
      `checksum mismatch for ${filePath}: expected sha256 ${expectedSha256}, got ${actualSha256}`,
      { status: 500, retryable: false },
    );
    this.name = 'ModelChecksumError';
    this.filePath = filePath;
    this.expectedSha256 = expectedSha256;
    this.actualSha256 = actualSha256;
  }
}

/** One source that was tried and why it did not give a usable file. */
export interface SourceAttempt {
  source: string;
  reason: string;
}

/** No source produced a verified copy of the model. */
export class ModelUnavailableError extends VoiceError {
  readonly modelId: string;
  readonly attempts: readonly SourceAttempt[];

  constructor(modelId: string, attempts: readonly SourceAttempt[], hint: string) {
    const tried = attempts.map((a) => `  - ${a.source}: ${a.reason}`).join('\n');
    super('VE_MODEL_UNAVAILABLE', `model ${modelId} is unavailable. Sources tried:\n${tried}\nTo fix: ${hint}`, {
      status: 503,
      retryable: false,
    });
    this.name = 'ModelUnavailableError';
    this.modelId = modelId;
    this.attempts = attempts;
  }
}

export class UnknownModelError extends VoiceError {
  constructor(id: string) {
    super('VE_MODEL_UNKNOWN', `unknown model id "${id}"; known: ${Object.keys(MODELS).join(', ')}`, { status: 400 });
    this.name = 'UnknownModelError';
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Resolves when `path` hashes to `sha256`; throws `ModelChecksumError` otherwise (and the fs error if it is missing). */
export async function verifyFile(path: string, sha256: string): Promise<void> {
  const actual = await sha256File(path);
  if (actual !== sha256.toLowerCase()) throw new ModelChecksumError(path, sha256.toLowerCase(), actual);
}

/** Returns the absolute path of a verified copy of model `id`. */
export async function resolveModel(id: string, options: ResolveModelOptions = {}): Promise<string> {
  if (!isModelId(id)) throw new UnknownModelError(id);
  const entry: ModelEntry = MODELS[id];
  const log = options.log ?? (() => {});
  const cacheDir = resolve(options.cacheDir ?? DEFAULT_CACHE_DIR);
  const cachePath = join(cacheDir, entry.fileName);
  const attempts: SourceAttempt[] = [];

  if (options.modelPath !== undefined) {
    const configured = resolve(options.modelPath);
    // An explicit path that is wrong is a configuration error the operator must see, not something to
    // paper over with a download.
    if (await isFile(configured)) {
      await verifyFile(configured, entry.sha256);
      log(`${id}: using configured path ${configured}`);
      return configured;
    }
    attempts.push({ source: `configured path ${configured}`, reason: 'file not found' });
  } else {
    attempts.push({ source: 'configured path', reason: 'not set' });
  }

  const cached = await tryVerified(cachePath, entry.sha256);
  if (cached === 'ok') {
    log(`${id}: using cache ${cachePath}`);
    return cachePath;
  }
  attempts.push({ source: `cache ${cachePath}`, reason: cached });

  for (const source of entry.sources) {
    if (source.kind === 'package') {
      const path = isAbsolute(source.relativePath) ? source.relativePath : join(PROJECT_ROOT, source.relativePath);
      const result = await tryVerified(path, entry.sha256);
      if (result === 'ok') {
        log(`${id}: using package file ${path}`);
        return path;
      }
      attempts.push({ source: `package file ${path}`, reason: result });
    } else if (source.kind === 'hub') {
      if (options.allowHub !== true) {
        attempts.push({ source: `hub ${source.url}`, reason: 'not allowed (pass allowHub: true)' });
        continue;
      }
      try {
        await downloadFromHub(source, entry, cachePath, log);
        return cachePath;
      } catch (err) {
        attempts.push({ source: `hub ${source.url}`, reason: errorText(err) });
      }
    } else {
      if (options.allowPip === false) {
        attempts.push({ source: `pip wheel ${source.requirement}`, reason: 'not allowed (allowPip: false)' });
        continue;
      }
      try {
        await extractFromWheel(source, entry, cachePath, options, log);
        return cachePath;
      } catch (err) {
        attempts.push({ source: `pip wheel ${source.requirement}`, reason: errorText(err) });
      }
    }
  }

  throw new ModelUnavailableError(id, attempts, fixHint(entry));
}

function fixHint(entry: ModelEntry): string {
  const hints = [`set the model path in configuration to a copy of ${entry.fileName} (sha256 ${entry.sha256})`];
  if (entry.sources.some((s) => s.kind === 'package')) hints.push('run `npm install` to restore the package that ships it');
  if (entry.sources.some((s) => s.kind === 'hub')) hints.push('allow the Hugging Face download (allowHub: true)');
  if (entry.sources.some((s) => s.kind === 'pip')) hints.push('install Python 3 with pip so the wheel can be fetched');
  return hints.join('; or ');
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** 'ok', or why the file is not usable. */
async function tryVerified(path: string, sha256: string): Promise<string> {
  if (!(await isFile(path))) return 'file not found';
  try {
    await verifyFile(path, sha256);
    return 'ok';
  } catch (err) {
    return errorText(err);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Verifies `tmpPath` and moves it to `cachePath`; removes it when verification fails. */
async function commitToCache(tmpPath: string, cachePath: string, sha256: string): Promise<void> {
  try {
    await verifyFile(tmpPath, sha256);
    await rename(tmpPath, cachePath);
  } finally {
    await rm(tmpPath, { force: true });
  }
}

function tempNameFor(cachePath: string): string {
  return `${cachePath}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
}

async function downloadFromHub(source: HubSource, entry: ModelEntry, cachePath: string, log: (msg: string) => void): Promise<void> {
  await mkdir(dirname(cachePath), { recursive: true });
  log(`${entry.id}: downloading ${source.url}`);
  const response = await fetch(source.url, { redirect: 'follow' });
  if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
  const tmpPath = tempNameFor(cachePath);
  await writeFile(tmpPath, new Uint8Array(await response.arrayBuffer()));
  await commitToCache(tmpPath, cachePath, entry.sha256);
  log(`${entry.id}: cached ${cachePath}`);
}

async function extractFromWheel(
  source: PipWheelSource,
  entry: ModelEntry,
  cachePath: string,
  options: ResolveModelOptions,
  log: (msg: string) => void,
): Promise<void> {
  const python = options.pythonCommand ?? 'python3';
  const timeoutMs = options.pipTimeoutMs ?? 300_000;
  await mkdir(dirname(cachePath), { recursive: true });
  const workDir = await mkdtemp(join(tmpdir(), 'voice-model-pip-'));
  try {
    log(`${entry.id}: ${python} -m pip download ${source.requirement} --no-deps -d ${workDir}`);
    await runProcess(
      python,
      ['-m', 'pip', 'download', source.requirement, '--no-deps', '--disable-pip-version-check', '-d', workDir],
      timeoutMs,
    );
    const wheel = (await readdir(workDir)).find((f) => f.endsWith('.whl'));
    if (wheel === undefined) throw new Error(`pip produced no wheel for ${source.requirement}`);
    const tmpPath = tempNameFor(cachePath);
    // A wheel is a zip; Python's zipfile is present wherever pip is, so no unzip tool or npm package is needed.
    const script = 'import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:\n    shutil.copyfileobj(src, dst)\n';
    await runProcess(python, ['-c', script, join(workDir, wheel), source.member, tmpPath], timeoutMs);
    await commitToCache(tmpPath, cachePath, entry.sha256);
    log(`${entry.id}: extracted ${source.member} from ${wheel} into ${cachePath}`);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Runs a command; rejects with its exit status and the tail of stderr. */
function runProcess(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else {
        const why = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
        const lastLines = stderr.trim().split('\n').slice(-3).join(' | ');
        reject(new Error(`${command} ${args[0]} ${args[1] ?? ''} failed (${why})${lastLines ? `: ${lastLines}` : ''}`));
      }
    });
  });
}
