/**
 * Per-frame cost of the WebAssembly DSP that every call pays: resampling one 20 ms frame (caller audio to
 * the 16 kHz model rate, bot audio up to 48 kHz) at Speex quality 3 and 5, and one Smart Turn v3 feature
 * extraction (8 s of audio; also a 2 s clip, which is mostly front padding: Pipecat's turn window gives
 * the model only the current turn, so most decisions are of this kind).
 *
 * Run: npm exec -- node bench/dsp.bench.ts   (writes bench/results/dsp.json)
 */
import { Bench } from 'tinybench';
import { loadResamplerModule, Resampler } from '../engine/stages/resampler.ts';
import { loadFeatureExtractor, SMART_TURN_FEATURE_LENGTH, SMART_TURN_SAMPLE_RATE } from '../engine/stages/smart-turn-features.ts';
import { reportBench } from './common/tinybench-report.ts';

const FRAME_DURATION_MS = 20;

/** Deterministic voiced-speech-like signal: a 140 Hz harmonic series, slowly amplitude-modulated, plus noise. */
function speechLike(length: number, sampleRate: number): Float32Array {
  const out = new Float32Array(length);
  let seed = 12345;
  for (let i = 0; i < length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const t = i / sampleRate;
    let voiced = 0;
    for (let h = 1; h <= 20; h++) voiced += Math.sin(2 * Math.PI * 140 * h * t) / h;
    out[i] = 0.2 * (0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t)) * voiced + 0.01 * (seed / 2 ** 32 - 0.5);
  }
  return out;
}

function toInt16(samples: Float32Array): Int16Array {
  return Int16Array.from(samples, (s) => Math.max(-32768, Math.min(32767, Math.round(s * 32767))));
}

await loadResamplerModule();
const extractor = await loadFeatureExtractor();

const bench = new Bench({ name: 'DSP (WebAssembly SIMD)', time: 500, warmup: true });

const resampleCases = [
  { inputSampleRate: 48_000, outputSampleRate: 16_000 },
  { inputSampleRate: 16_000, outputSampleRate: 48_000 },
  { inputSampleRate: 24_000, outputSampleRate: 48_000 },
] as const;
for (const { inputSampleRate, outputSampleRate } of resampleCases) {
  // One second of signal cycled frame by frame, so the filter sees a continuous stream like a live call.
  const second = toInt16(speechLike(inputSampleRate, inputSampleRate));
  const frameSamples = (inputSampleRate * FRAME_DURATION_MS) / 1000;
  for (const quality of [3, 5]) {
    const resampler = Resampler.create({ inputSampleRate, outputSampleRate, quality });
    let offset = 0;
    bench.add(`resample 20 ms ${inputSampleRate / 1000}k->${outputSampleRate / 1000}k q${quality}`, () => {
      resampler.process(second.subarray(offset, offset + frameSamples));
      offset = (offset + frameSamples) % second.length;
    });
  }
}

const features = new Float32Array(SMART_TURN_FEATURE_LENGTH);
const eightSeconds = speechLike(8 * SMART_TURN_SAMPLE_RATE, SMART_TURN_SAMPLE_RATE);
const twoSeconds = eightSeconds.subarray(6 * SMART_TURN_SAMPLE_RATE);
bench.add('smart turn features, 8 s clip', () => {
  extractor.extract(eightSeconds, features);
});
bench.add('smart turn features, 2 s clip (front-padded)', () => {
  extractor.extract(twoSeconds, features);
});

await bench.run();
reportBench(bench, 'dsp');
