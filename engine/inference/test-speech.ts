/**
 * Test helper: real synthesised speech at 16 kHz from Debian's espeak-ng, resampled with sox. Tests that
 * need speech fail (never skip) with an install hint when either tool is missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cache = new Map<string, Float32Array>();

function requireTool(name: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${name} is not installed; speech tests need it: apt-get install -y espeak-ng sox`);
  }
}

/** Speaks `text` with espeak-ng and returns mono float32 samples at 16 kHz. */
export function synthesizeSpeech16k(text: string, voice = 'en-us'): Float32Array {
  const key = `${voice}\u0000${text}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  requireTool('espeak-ng');
  requireTool('sox');
  const dir = mkdtempSync(join(tmpdir(), 'speech-'));
  try {
    const wav = join(dir, 'speech.wav');
    const raw = join(dir, 'speech.f32');
    execFileSync('espeak-ng', ['-v', voice, '-w', wav, text], { stdio: 'ignore' });
    // espeak-ng writes 22050 Hz; sox's default high-quality resampler brings it to 16 kHz float32.
    execFileSync('sox', [wav, '-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', '16000', raw], {
      stdio: 'ignore',
    });
    const bytes = readFileSync(raw);
    const samples = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    cache.set(key, samples);
    return samples;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Low deterministic noise (about -60 dBFS), so "silence" is not exact digital zero. */
export function quietNoise(length: number, seed = 1): Float32Array {
  const out = new Float32Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 0.002;
  }
  return out;
}

/** `silenceBeforeSamples` of quiet noise, the speech, then `silenceAfterSamples` of quiet noise. */
export function padWithSilence(speech: Float32Array, silenceBeforeSamples: number, silenceAfterSamples: number, seed = 1): Float32Array {
  const out = quietNoise(silenceBeforeSamples + speech.length + silenceAfterSamples, seed);
  for (let i = 0; i < speech.length; i++) out[silenceBeforeSamples + i] += speech[i];
  return out;
}
