import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadResamplerModule, Resampler } from './resampler.ts';
import {
  loadFeatureExtractor,
  SMART_TURN_FEATURE_LENGTH,
  SMART_TURN_FRAMES,
  SMART_TURN_MEL_BINS,
  SMART_TURN_SAMPLES,
  type SmartTurnFeatureExtractor,
} from './smart-turn-features.ts';

// ---------------------------------------------------------------------------------------------------------
// Speech fixtures: espeak-ng writes 22050 Hz 16-bit mono WAV; the project's resampler brings it to 16 kHz.

const workDir = mkdtempSync(join(tmpdir(), 'smart-turn-features-'));

function readMonoWav(bytes: Buffer): { sampleRate: number; samples: Int16Array } {
  if (bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let sampleRate = 0;
  for (let offset = 12; offset + 8 <= bytes.length; ) {
    const id = bytes.toString('ascii', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      const format = bytes.readUInt16LE(body);
      const channels = bytes.readUInt16LE(body + 2);
      const bitsPerSample = bytes.readUInt16LE(body + 14);
      if (format !== 1 || channels !== 1 || bitsPerSample !== 16) throw new Error(`expected 16-bit mono PCM, got format ${format}, ${channels} ch, ${bitsPerSample} bit`);
      sampleRate = bytes.readUInt32LE(body + 4);
    } else if (id === 'data') {
      // Streaming writers leave the size at 0 or 0xFFFFFFFF: trust the file length instead.
      const end = Math.min(bytes.length, size === 0 ? bytes.length : body + size);
      const samples = new Int16Array(Math.floor((end - body) / 2));
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(body + 2 * i);
      if (sampleRate === 0) throw new Error('data chunk before fmt chunk');
      return { sampleRate, samples };
    }
    offset = body + size + (size & 1);
  }
  throw new Error('no data chunk');
}

let fixtureCount = 0;
/** Speaks `text` with espeak-ng and returns float32 PCM at 16 kHz. */
function synthesiseSpeech16k(text: string): Float32Array {
  const path = join(workDir, `speech-${fixtureCount++}.wav`);
  try {
    execFileSync('espeak-ng', ['-w', path, text], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new Error(
      'These tests need real synthesised speech from espeak-ng, which failed or is not installed ' +
        '(Debian: apt-get install -y espeak-ng).',
      { cause: error },
    );
  }
  const { sampleRate, samples } = readMonoWav(readFileSync(path));
  const resampler = Resampler.create({ inputSampleRate: sampleRate, outputSampleRate: 16000 });
  const pcm16k = resampler.process(samples);
  resampler.close();
  return Float32Array.from(pcm16k, (s) => s / 32768);
}

// ---------------------------------------------------------------------------------------------------------
// Independent float64 reference, written from the recipe (Pipecat `_whisper_features.py`): a naive DFT and a
// dense filterbank built with the same linspace/slope formulation as the Python code.

const N_FFT = 400;
const HOP = 160;
const BINS = N_FFT / 2 + 1;

function referenceMelFilters(): Float64Array[] {
  const toMel = (hz: number) => (hz >= 1000 ? 15 + Math.log(hz / 1000) * (27 / Math.log(6.4)) : (3 * hz) / 200);
  const toHz = (mel: number) => (mel >= 15 ? 1000 * Math.exp((Math.log(6.4) / 27) * (mel - 15)) : (200 * mel) / 3);
  const melMin = toMel(0);
  const melMax = toMel(8000);
  const filterFreqs = Array.from({ length: 82 }, (_, i) => toHz(melMin + (i * (melMax - melMin)) / 81));
  const fftFreqs = Array.from({ length: BINS }, (_, k) => (k * 8000) / (BINS - 1));
  const filters: Float64Array[] = [];
  for (let m = 0; m < 80; m++) {
    const row = new Float64Array(BINS);
    const enorm = 2 / (filterFreqs[m + 2] - filterFreqs[m]);
    for (let k = 0; k < BINS; k++) {
      const down = -(filterFreqs[m] - fftFreqs[k]) / (filterFreqs[m + 1] - filterFreqs[m]);
      const up = (filterFreqs[m + 2] - fftFreqs[k]) / (filterFreqs[m + 2] - filterFreqs[m + 1]);
      row[k] = Math.max(0, Math.min(down, up)) * enorm;
    }
    filters.push(row);
  }
  return filters;
}

function referenceFeatures(audio: Float32Array): Float64Array {
  const n = SMART_TURN_SAMPLES;
  const x = new Float64Array(n);
  const kept = Math.min(audio.length, n);
  for (let i = 0; i < kept; i++) x[n - kept + i] = audio[audio.length - kept + i];
  let mean = 0;
  for (const v of x) mean += v;
  mean /= n;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2;
  variance /= n;
  const scale = 1 / Math.sqrt(variance + 1e-7);
  const normalised = x.map((v) => (v - mean) * scale);
  const at = (i: number) => normalised[i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i]; // numpy reflect

  const cos = new Float64Array(N_FFT);
  const sin = new Float64Array(N_FFT);
  for (let i = 0; i < N_FFT; i++) {
    cos[i] = Math.cos((2 * Math.PI * i) / N_FFT);
    sin[i] = Math.sin((2 * Math.PI * i) / N_FFT);
  }
  const window = Float64Array.from({ length: N_FFT }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N_FFT));
  const filters = referenceMelFilters();
  const logMel = new Float64Array(80 * 800);
  const frame = new Float64Array(N_FFT);
  const power = new Float64Array(BINS);
  for (let t = 0; t < 800; t++) {
    for (let i = 0; i < N_FFT; i++) frame[i] = at(t * HOP - N_FFT / 2 + i) * window[i];
    for (let k = 0; k < BINS; k++) {
      let re = 0;
      let im = 0;
      for (let i = 0, phase = 0; i < N_FFT; i++, phase = (phase + k) % N_FFT) {
        re += frame[i] * cos[phase];
        im -= frame[i] * sin[phase];
      }
      power[k] = re * re + im * im;
    }
    for (let m = 0; m < 80; m++) {
      let energy = 0;
      for (let k = 0; k < BINS; k++) energy += filters[m][k] * power[k];
      logMel[m * 800 + t] = Math.log10(Math.max(1e-10, energy));
    }
  }
  const max = logMel.reduce((a, b) => Math.max(a, b), -Infinity);
  return logMel.map((v) => (Math.max(v, max - 8) + 4) / 4);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Deterministic noise (LCG), so a failure reproduces. */
function noise(length: number, amplitude: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = amplitude * (state / 2 ** 32 - 0.5);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

describe('SmartTurnFeatureExtractor', () => {
  let extractor: SmartTurnFeatureExtractor;
  let shortSpeech: Float32Array;
  let longSpeech: Float32Array;

  beforeAll(async () => {
    await loadResamplerModule();
    extractor = await loadFeatureExtractor();
    shortSpeech = synthesiseSpeech16k('Hello, I would like to book a table for two tonight.');
    longSpeech = synthesiseSpeech16k(
      'Well, let me think about that for a moment. I was hoping to travel on Tuesday, but my sister is visiting, ' +
        'so maybe Thursday morning would work better, unless the train is already full, in which case Friday is fine too.',
    );
  });

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('matches the float64 reference within 1e-4 on a short clip (front padding)', () => {
    expect(shortSpeech.length).toBeLessThan(SMART_TURN_SAMPLES);
    const features = extractor.extract(shortSpeech);
    expect(features.length).toBe(SMART_TURN_MEL_BINS * SMART_TURN_FRAMES);
    expect(maxAbsDiff(features, referenceFeatures(shortSpeech))).toBeLessThan(1e-4);
  });

  it('matches the float64 reference within 1e-4 on a long clip (keeps the last 8 s)', () => {
    expect(longSpeech.length).toBeGreaterThan(SMART_TURN_SAMPLES);
    const features = extractor.extract(longSpeech);
    expect(maxAbsDiff(features, referenceFeatures(longSpeech))).toBeLessThan(1e-4);
  });

  it('matches the float64 reference on a 60 ms noise burst and on silence', () => {
    const burst = noise(960, 0.3, 7);
    expect(maxAbsDiff(extractor.extract(burst), referenceFeatures(burst))).toBeLessThan(1e-4);
    const silence = new Float32Array(16000);
    expect(maxAbsDiff(extractor.extract(silence), referenceFeatures(silence))).toBeLessThan(1e-4);
  });

  it('uses exactly the last 8 s of a longer clip', () => {
    const tail = longSpeech.slice(longSpeech.length - SMART_TURN_SAMPLES);
    expect(extractor.extract(longSpeech)).toEqual(extractor.extract(tail));
    // And not the first 8 s: the clips differ, so the features must too.
    expect(maxAbsDiff(extractor.extract(longSpeech), extractor.extract(longSpeech.slice(0, SMART_TURN_SAMPLES)))).toBeGreaterThan(0.1);
  });

  it('treats a short clip as the same clip zero-padded at the front to 8 s', () => {
    const padded = new Float32Array(SMART_TURN_SAMPLES);
    padded.set(shortSpeech, SMART_TURN_SAMPLES - shortSpeech.length);
    expect(extractor.extract(shortSpeech)).toEqual(extractor.extract(padded));
  });

  it('writes into a caller-owned array and rejects one that is too small', () => {
    const out = new Float32Array(SMART_TURN_FEATURE_LENGTH);
    expect(extractor.extract(shortSpeech, out)).toBe(out);
    expect(out).toEqual(extractor.extract(shortSpeech));
    expect(() => extractor.extract(shortSpeech, new Float32Array(SMART_TURN_FEATURE_LENGTH - 1))).toThrow(
      expect.objectContaining({ code: 'VE_FEATURES_OUTPUT_TOO_SMALL' }),
    );
  });

  it('is created once per thread', async () => {
    expect(await loadFeatureExtractor()).toBe(extractor);
  });
});
