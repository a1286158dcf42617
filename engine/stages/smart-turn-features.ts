/**
 * Smart Turn v3 input features: Whisper-style log-mel of (at most) the last 8 s of 16 kHz audio, computed
 * the way Pipecat's reference does (`pipecat/audio/turn/smart_turn/_whisper_features.py`, with
 * `truncate_audio_to_last_n_seconds` in front of it):
 *
 * 1. keep the last 128 000 samples, zero-padding at the front when shorter;
 * 2. normalise the padded buffer in float32, as numpy computes it: (x - mean) / sqrt(var + 1e-7);
 * 3. in float64 from here: centred STFT (reflect-pad 200 each side, periodic Hann of 400, hop 160),
 *    power spectrum (201 bins);
 * 4. 80 Slaney mel filters over 0-8 kHz with Slaney area normalisation; floor 1e-10; log10;
 * 5. drop the last of the 801 frames; clamp to (max - 8); then (x + 4) / 4, rounded to float32.
 *
 * Steps 1-3 and the mel projection run in WebAssembly (`wasm/whisper-log-mel.c`); this file builds the
 * tables the way numpy does (np.hanning, np.linspace, the Slaney formulas) and does step 5. The float32
 * normalisation is bit-identical to numpy's (same pairwise summation order); the float64 part differs from
 * numpy's pocketfft and OpenBLAS only in the last bits, which the final float32 rounding almost always
 * hides: on speech the output is bit-identical to Pipecat's for nearly every element (see
 * test/pipecat/features.test.ts). That matters because the int8 model quantises its activations
 * dynamically and turns feature differences of 1e-5 into probability differences of several hundredths.
 *
 * Output layout is mel-major [80][800], i.e. one row of the model input `input_features` [B, 80, 800].
 */
import { VoiceError } from '../errors.ts';
import { loadWhisperLogMelModule, type WhisperLogMelModule } from '../../wasm/whisper-log-mel.ts';

export const SMART_TURN_MEL_BINS = 80;
export const SMART_TURN_FRAMES = 800;
export const SMART_TURN_SAMPLES = 128_000;
/** Smart Turn v3 only accepts 16 kHz audio. */
export const SMART_TURN_SAMPLE_RATE = 16_000;
/** Length of `extract`'s output: SMART_TURN_MEL_BINS * SMART_TURN_FRAMES. */
export const SMART_TURN_FEATURE_LENGTH = SMART_TURN_MEL_BINS * SMART_TURN_FRAMES;

const FRAME_SAMPLES = 400; // n_fft
const HALF_FRAME = FRAME_SAMPLES / 2;
const FREQUENCY_BINS = HALF_FRAME + 1;
const MEL_FLOOR = 1e-10;
const DYNAMIC_RANGE_LOG10 = 8;
/** Capacity of the module's sparse filterbank (each bin belongs to at most two triangles). */
const MAX_MEL_WEIGHTS = 2 * FREQUENCY_BINS;

/** Thrown when `extract` is given an output array shorter than SMART_TURN_FEATURE_LENGTH. */
export class FeatureOutputTooSmallError extends VoiceError {
  constructor(lengthGiven: number) {
    super('VE_FEATURES_OUTPUT_TOO_SMALL', `the feature output needs ${SMART_TURN_FEATURE_LENGTH} floats, got ${lengthGiven}`);
    this.name = 'FeatureOutputTooSmallError';
  }
}

/** Thrown when the WebAssembly module cannot be loaded or its tables do not fit. */
export class FeatureExtractorInitError extends VoiceError {
  constructor(message: string) {
    super('VE_FEATURES_INIT', message);
    this.name = 'FeatureExtractorInitError';
  }
}

// Slaney mel scale exactly as `_whisper_features.py` writes it (linear below 1 kHz, logarithmic above).
const MIN_LOG_HERTZ = 1000;
const MIN_LOG_MEL = 15;

function hertzToMelSlaney(frequencyHz: number): number {
  return frequencyHz >= MIN_LOG_HERTZ ? MIN_LOG_MEL + Math.log(frequencyHz / MIN_LOG_HERTZ) * (27 / Math.log(6.4)) : (3 * frequencyHz) / 200;
}

function melToHertzSlaney(mel: number): number {
  return mel >= MIN_LOG_MEL ? MIN_LOG_HERTZ * Math.exp((Math.log(6.4) / 27) * (mel - MIN_LOG_MEL)) : (200 * mel) / 3;
}

/** np.linspace(start, stop, count): start + i * step, with the last point set to `stop`. */
function linspace(start: number, stop: number, count: number): Float64Array {
  const out = new Float64Array(count);
  const step = (stop - start) / (count - 1);
  for (let i = 0; i < count; i++) out[i] = i * step + start;
  out[count - 1] = stop;
  return out;
}

/** Fills the module's tables: the window, the FFT twiddles and the sparse mel filterbank. */
function fillTables(module: WhisperLogMelModule): void {
  const f64 = (ptr: number, length: number) => new Float64Array(module.memory.buffer, ptr, length);
  const i32 = (ptr: number, length: number) => new Int32Array(module.memory.buffer, ptr, length);

  // np.hanning(401)[:-1]: 0.5 + 0.5 cos(pi n / 400) for n = -400, -398, ..., 398 (a periodic Hann of 400).
  const hann = f64(module.hann_ptr(), FRAME_SAMPLES);
  for (let j = 0; j < FRAME_SAMPLES; j++) hann[j] = 0.5 + 0.5 * Math.cos((Math.PI * (2 * j - FRAME_SAMPLES)) / FRAME_SAMPLES);

  const splitRe = f64(module.split_re_ptr(), HALF_FRAME + 1);
  const splitIm = f64(module.split_im_ptr(), HALF_FRAME + 1);
  for (let k = 0; k <= HALF_FRAME; k++) {
    splitRe[k] = Math.cos((-2 * Math.PI * k) / FRAME_SAMPLES);
    splitIm[k] = Math.sin((-2 * Math.PI * k) / FRAME_SAMPLES);
  }
  // Stockham stages over the 200 packed points: (radix, sub-transform length n, butterflies m = n / radix).
  const stages = [
    { radix: 4, n: 200, re: module.twiddle4_re_ptr(), im: module.twiddle4_im_ptr() },
    { radix: 2, n: 50, re: module.twiddle2_re_ptr(), im: module.twiddle2_im_ptr() },
    { radix: 5, n: 25, re: module.twiddle5_re_ptr(), im: module.twiddle5_im_ptr() },
  ];
  for (const { radix, n, re, im } of stages) {
    const m = n / radix;
    const twRe = f64(re, m * (radix - 1));
    const twIm = f64(im, m * (radix - 1));
    for (let q = 0; q < m; q++) {
      for (let r = 1; r < radix; r++) {
        twRe[q * (radix - 1) + r - 1] = Math.cos((-2 * Math.PI * q * r) / n);
        twIm[q * (radix - 1) + r - 1] = Math.sin((-2 * Math.PI * q * r) / n);
      }
    }
  }
  f64(module.radix5_constants_ptr(), 4).set([Math.cos((2 * Math.PI) / 5), Math.cos((4 * Math.PI) / 5), Math.sin((2 * Math.PI) / 5), Math.sin((4 * Math.PI) / 5)]);

  // `_build_mel_filterbank`: linspace in mel, back to hertz, triangles from the slopes, then Slaney area
  // normalisation; stored sparsely (the non-zero weights of a triangle are contiguous).
  const filterHz = linspace(hertzToMelSlaney(0), hertzToMelSlaney(SMART_TURN_SAMPLE_RATE / 2), SMART_TURN_MEL_BINS + 2).map(melToHertzSlaney);
  const binHz = linspace(0, SMART_TURN_SAMPLE_RATE / 2, FREQUENCY_BINS);
  const weights = f64(module.mel_weights_ptr(), MAX_MEL_WEIGHTS);
  const first = i32(module.mel_first_ptr(), SMART_TURN_MEL_BINS);
  const count = i32(module.mel_count_ptr(), SMART_TURN_MEL_BINS);
  const offset = i32(module.mel_offset_ptr(), SMART_TURN_MEL_BINS);
  let stored = 0;
  for (let m = 0; m < SMART_TURN_MEL_BINS; m++) {
    const areaNormalisation = 2 / (filterHz[m + 2] - filterHz[m]);
    offset[m] = stored;
    first[m] = -1;
    for (let k = 0; k < FREQUENCY_BINS; k++) {
      const down = -(filterHz[m] - binHz[k]) / (filterHz[m + 1] - filterHz[m]);
      const up = (filterHz[m + 2] - binHz[k]) / (filterHz[m + 2] - filterHz[m + 1]);
      const weight = Math.max(0, Math.min(down, up)) * areaNormalisation;
      if (weight <= 0) continue;
      if (first[m] < 0) first[m] = k;
      if (k !== first[m] + (stored - offset[m]) || stored >= MAX_MEL_WEIGHTS) throw new FeatureExtractorInitError(`mel filter ${m} is not one contiguous run of bins`);
      weights[stored++] = weight;
    }
    count[m] = stored - offset[m];
    if (first[m] < 0) first[m] = 0; // a filter narrower than one bin stays all-zero, as in the reference
  }
}

/**
 * Computes Smart Turn v3 `input_features` for one clip. One instance per thread (see `loadFeatureExtractor`);
 * `extract` is synchronous and not re-entrant, which JavaScript's run-to-completion guarantees.
 */
export class SmartTurnFeatureExtractor {
  readonly #module: WhisperLogMelModule;
  readonly #clip: Float32Array;
  readonly #energies: Float64Array;
  readonly #logs = new Float64Array(SMART_TURN_FEATURE_LENGTH);

  /** Use `loadFeatureExtractor()`; this is public only so that tests and benches can build a private instance. */
  constructor(module: WhisperLogMelModule) {
    this.#module = module;
    fillTables(module);
    this.#clip = new Float32Array(module.memory.buffer, module.clip_ptr(), SMART_TURN_SAMPLES);
    this.#energies = new Float64Array(module.memory.buffer, module.energies_ptr(), SMART_TURN_FEATURE_LENGTH);
  }

  /**
   * Features of the last 8 s of `audio16k` (float32 PCM at 16 kHz, any length; shorter clips are
   * zero-padded at the front). Writes into `out` when given (at least SMART_TURN_FEATURE_LENGTH floats)
   * and returns it, laid out [80 mel bins][800 frames].
   */
  extract(audio16k: Float32Array, out?: Float32Array): Float32Array {
    if (out !== undefined && out.length < SMART_TURN_FEATURE_LENGTH) throw new FeatureOutputTooSmallError(out.length);
    const features = out ?? new Float32Array(SMART_TURN_FEATURE_LENGTH);
    const keptSamples = Math.min(audio16k.length, SMART_TURN_SAMPLES);
    this.#clip.set(audio16k.subarray(audio16k.length - keptSamples), SMART_TURN_SAMPLES - keptSamples);
    const paddingFrames = this.#module.compute(keptSamples);

    // log10 once per distinct frame: the leading padding frames share one spectrum.
    const energies = this.#energies;
    const logs = this.#logs;
    const firstComputed = Math.max(0, paddingFrames - 1);
    let maxLog = -Infinity;
    for (let m = 0; m < SMART_TURN_MEL_BINS; m++) {
      const row = m * SMART_TURN_FRAMES;
      for (let t = firstComputed; t < SMART_TURN_FRAMES; t++) {
        const energy = energies[row + t];
        const log = Math.log10(energy > MEL_FLOOR ? energy : MEL_FLOOR);
        logs[row + t] = log;
        if (log > maxLog) maxLog = log;
      }
      logs.fill(logs[row + firstComputed], row, row + firstComputed);
    }

    const floor = maxLog - DYNAMIC_RANGE_LOG10;
    for (let i = 0; i < SMART_TURN_FEATURE_LENGTH; i++) {
      const value = logs[i];
      features[i] = ((value > floor ? value : floor) + 4) / 4;
    }
    return features;
  }
}

let extractorPromise: Promise<SmartTurnFeatureExtractor> | undefined;

/** The thread's feature extractor, created on first use (loads the module and fills its tables). */
export function loadFeatureExtractor(): Promise<SmartTurnFeatureExtractor> {
  extractorPromise ??= Promise.resolve()
    .then(() => new SmartTurnFeatureExtractor(loadWhisperLogMelModule()))
    .catch((error: unknown) => {
      extractorPromise = undefined;
      throw new FeatureExtractorInitError(`the feature extractor could not be set up: ${(error as Error).message}`);
    });
  return extractorPromise;
}
