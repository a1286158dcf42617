import { beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { loadResamplerModule, Resampler } from './resampler.ts';
import { rms } from '../pcm.ts';

/** The conversions the engine needs: telephony/WebRTC rates to the 16 kHz model rate, and TTS rates to 48 kHz. */
const RATE_PAIRS: ReadonlyArray<readonly [number, number]> = [
  [48000, 16000],
  [24000, 16000],
  [8000, 16000],
  [44100, 16000],
  [16000, 16000],
  [16000, 48000],
  [24000, 48000],
];

function sine(length: number, sampleRate: number, frequencyHz: number, amplitude: number, phase = 0): Int16Array {
  const out = new Int16Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRate + phase));
  return out;
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Frequency from the first and last upward zero crossings, located to a fraction of a sample by interpolation. */
function estimateFrequencyHz(samples: Int16Array, sampleRate: number): number {
  let first = -1;
  let last = -1;
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i - 1] < 0 && samples[i] >= 0) {
      const at = i - 1 + -samples[i - 1] / (samples[i] - samples[i - 1]);
      if (first < 0) first = at;
      last = at;
      crossings++;
    }
  }
  if (crossings < 2) return 0;
  return ((crossings - 1) * sampleRate) / (last - first);
}


describe('Resampler before the module is loaded', () => {
  it('throws VE_RESAMPLER_NOT_LOADED from create', async () => {
    vi.resetModules();
    const fresh = await import('./resampler.ts');
    expect(() => fresh.Resampler.create({ inputSampleRate: 48000, outputSampleRate: 16000 })).toThrow(
      expect.objectContaining({ code: 'VE_RESAMPLER_NOT_LOADED' }),
    );
  });
});

describe('Resampler', () => {
  beforeAll(async () => {
    await loadResamplerModule();
  });

  it('rejects rates and qualities it cannot use', () => {
    for (const options of [
      { inputSampleRate: 0, outputSampleRate: 16000 },
      { inputSampleRate: 48000, outputSampleRate: 16000.5 },
      { inputSampleRate: 48000, outputSampleRate: 16000, quality: 11 },
    ]) {
      expect(() => Resampler.create(options)).toThrow(expect.objectContaining({ code: 'VE_RESAMPLER_INVALID_OPTIONS' }));
    }
  });

  it('keeps the frequency and level of a sine fed in random frame sizes, and the output count tracks input * ratio', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...RATE_PAIRS),
        fc.integer({ min: 150, max: 3000 }),
        fc.integer({ min: 1000, max: 20000 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 64 }),
        fc.constantFrom(3, 5),
        ([inputSampleRate, outputSampleRate], frequencyHz, amplitude, frameSizes, quality) => {
          const input = sine(Math.round(inputSampleRate * 0.4), inputSampleRate, frequencyHz, amplitude);
          const resampler = Resampler.create({ inputSampleRate, outputSampleRate, quality });
          const ratio = outputSampleRate / inputSampleRate;
          const parts: Int16Array[] = [];
          let consumedSamples = 0;
          let producedSamples = 0;
          for (let i = 0; consumedSamples < input.length; i++) {
            const size = Math.min(frameSizes[i % frameSizes.length], input.length - consumedSamples);
            const out = resampler.process(input.subarray(consumedSamples, consumedSamples + size));
            consumedSamples += size;
            producedSamples += out.length;
            parts.push(out);
            // Speex emits an output sample as soon as its input position is available: never more than one behind.
            expect(Math.abs(producedSamples - consumedSamples * ratio)).toBeLessThanOrEqual(Math.max(1, resampler.outputLatencySamples));
            expect(Math.abs(producedSamples - consumedSamples * ratio)).toBeLessThanOrEqual(1);
          }
          const output = concat(parts);
          // Skip the filter's start-up transient and the tail still inside the filter.
          const edge = 2 * resampler.outputLatencySamples + Math.ceil(outputSampleRate / 100);
          const steady = output.subarray(edge, output.length - edge);
          const inputSteady = input.subarray(Math.round(edge / ratio), input.length - Math.round(edge / ratio));
          expect(Math.abs(estimateFrequencyHz(steady, outputSampleRate) - frequencyHz) / frequencyHz).toBeLessThan(0.002);
          const levelRatio = rms(steady) / rms(inputSteady);
          expect(levelRatio).toBeGreaterThan(0.99);
          expect(levelRatio).toBeLessThan(1.01);
          resampler.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('keeps its stream state: chunked output equals the one-shot output', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...RATE_PAIRS),
        fc.array(fc.integer({ min: 1, max: 2500 }), { minLength: 1, maxLength: 32 }),
        ([inputSampleRate, outputSampleRate], frameSizes) => {
          const input = sine(Math.round(inputSampleRate * 0.25), inputSampleRate, 440, 12000);
          const oneShot = Resampler.create({ inputSampleRate, outputSampleRate });
          const chunked = Resampler.create({ inputSampleRate, outputSampleRate });
          const expected = oneShot.process(input);
          const parts: Int16Array[] = [];
          for (let offset = 0, i = 0; offset < input.length; i++) {
            const size = Math.min(frameSizes[i % frameSizes.length], input.length - offset);
            parts.push(chunked.process(input.subarray(offset, offset + size)));
            offset += size;
          }
          const actual = concat(parts);
          expect(actual.length).toBe(expected.length);
          let maxDiff = 0;
          for (let i = 0; i < actual.length; i++) maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
          expect(maxDiff).toBeLessThanOrEqual(1);
          oneShot.close();
          chunked.close();
        },
      ),
      { numRuns: 25 },
    );
  });

  it('keeps interleaved streams independent although they share the thread scratch buffers', () => {
    const a = sine(48000, 48000, 300, 9000);
    const b = sine(48000, 48000, 2100, 15000, 1);
    const alone = Resampler.create({ inputSampleRate: 48000, outputSampleRate: 16000 }).process(a);
    const ra = Resampler.create({ inputSampleRate: 48000, outputSampleRate: 16000 });
    const rb = Resampler.create({ inputSampleRate: 48000, outputSampleRate: 16000 });
    const partsA: Int16Array[] = [];
    for (let offset = 0; offset < a.length; offset += 960) {
      partsA.push(ra.process(a.subarray(offset, offset + 960)));
      // A larger frame on the other stream forces the shared scratch to grow between calls of this one.
      rb.process(b.subarray(offset, offset + 960 + (offset === 24000 ? 20000 : 0)));
    }
    expect(concat(partsA)).toEqual(alone);
  });

  it('filters out content above the output Nyquist frequency instead of aliasing it', () => {
    // 12 kHz at 48 kHz would fold to 4 kHz at 16 kHz without the anti-aliasing filter.
    const resampler = Resampler.create({ inputSampleRate: 48000, outputSampleRate: 16000 });
    const input = sine(48000, 48000, 12000, 20000, 0.3);
    const out = resampler.process(input);
    const edge = 2 * resampler.outputLatencySamples;
    expect(rms(out.subarray(edge, out.length - edge)) / rms(input)).toBeLessThan(0.01);
  });

  it('passes identical rates through as a copy', () => {
    const resampler = Resampler.create({ inputSampleRate: 16000, outputSampleRate: 16000 });
    const input = sine(320, 16000, 500, 8000);
    const out = resampler.process(input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
    expect(resampler.outputLatencySamples).toBe(0);
  });

  it('closes idempotently and rejects work after close', () => {
    const resampler = Resampler.create({ inputSampleRate: 24000, outputSampleRate: 48000 });
    expect(resampler.process(new Int16Array(480)).length).toBe(960);
    resampler.close();
    resampler.close();
    expect(resampler.closed).toBe(true);
    expect(() => resampler.process(new Int16Array(480))).toThrow(expect.objectContaining({ code: 'VE_CLOSED' }));
  });

  it('returns an empty frame for empty input', () => {
    const resampler = Resampler.create({ inputSampleRate: 48000, outputSampleRate: 16000 });
    expect(resampler.process(new Int16Array(0)).length).toBe(0);
    expect(resampler.process(new Int16Array(960)).length).toBe(320);
    resampler.close();
  });
});
