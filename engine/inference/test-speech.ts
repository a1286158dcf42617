/**
 * Test helper for the inference tests: the project's espeak-ng speech fixtures (test/support/speech.ts,
 * which fails with an install hint when espeak-ng or sox is missing) as float32 at 16 kHz, plus quiet
 * noise to pad it with, so "silence" is never exact digital zero.
 */
import { synthesizeSpeech } from '../../test/support/speech.ts';

/** Speaks `text` with espeak-ng and returns mono float32 samples in [-1, 1) at 16 kHz. */
export function synthesizeSpeech16k(text: string, voice = 'en-us'): Float32Array {
  const pcm = synthesizeSpeech(text, { sampleRate: 16_000, voice });
  return Float32Array.from(pcm, (s) => s / 32768);
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
