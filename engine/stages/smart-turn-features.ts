/**
 * Smart Turn v3 input features: Whisper-style log-mel of the last 8 s of 16 kHz audio, computed with
 * PFFFT in WebAssembly. The recipe is Pipecat's `_whisper_features.py` (itself vendored from Hugging Face
 * `WhisperFeatureExtractor`), with Pipecat's `truncate_audio_to_last_n_seconds` in front of it:
 *
 * 1. keep the last 128 000 samples, zero-padding at the front when shorter;
 * 2. normalise the padded buffer: (x - mean) / sqrt(var + 1e-7);
 * 3. centred STFT: reflect-pad 200 each side, periodic Hann of 400, hop 160, power spectrum (201 bins);
 * 4. 80 Slaney mel filters over 0-8 kHz with Slaney area normalisation; floor 1e-10; log10;
 * 5. drop the last of the 801 frames; clamp to (max - 8); then (x + 4) / 4.
 *
 * Output layout is mel-major [80][800], i.e. one row of the model input `input_features` [B, 80, 800].
 *
 * The 400-point DFT: PFFFT rejects 400 for real transforms (it needs a multiple of 32), so each frame is
 * zero-padded to 800 points (800 = 2^5 * 5^2, accepted) and the even bins are read. This is exact, not an
 * approximation: with x[n] = 0 for n >= 400, X800[2k] = sum_{n<400} x[n] e^{-2 pi i (2k) n / 800} = X400[k].
 * A real 800-point transform costs about as much as the complex 400-point one that packing two frames into
 * one transform would need (1.1 vs 0.9 us measured), without letting the float32 round-off of a loud frame
 * leak into a quiet neighbour. PFFFT has no batched entry point, so it is one call per frame (800: the
 * dropped 801st frame is never computed); a JS-to-WebAssembly call costs tens of nanoseconds.
 */
import { VoiceError } from '../errors.ts';
import { isPffftSize, loadPffftModule, PFFFT_FORWARD, PFFFT_REAL, type PffftModule } from '../../wasm/pffft.ts';
import type { WasmPointer } from '../../wasm/speex-resampler.ts';

export const SMART_TURN_MEL_BINS = 80;
export const SMART_TURN_FRAMES = 800;
export const SMART_TURN_SAMPLES = 128_000;
/** Smart Turn v3 only accepts 16 kHz audio. */
export const SMART_TURN_SAMPLE_RATE = 16_000;
/** Length of `extract`'s output: SMART_TURN_MEL_BINS * SMART_TURN_FRAMES. */
export const SMART_TURN_FEATURE_LENGTH = SMART_TURN_MEL_BINS * SMART_TURN_FRAMES;

const FRAME_SAMPLES = 400; // n_fft
const HOP_SAMPLES = 160;
const CENTER_PAD_SAMPLES = FRAME_SAMPLES / 2;
const FREQUENCY_BINS = FRAME_SAMPLES / 2 + 1;
/** Zero-padded transform size; see the file comment for why the even bins of 800 are the 400-point DFT. */
const TRANSFORM_SIZE = 2 * FRAME_SAMPLES;
const PADDED_SAMPLES = SMART_TURN_SAMPLES + 2 * CENTER_PAD_SAMPLES;
const MEL_FLOOR = 1e-10;
const NORMALISE_VARIANCE_EPSILON = 1e-7;
const DYNAMIC_RANGE_LOG10 = 8;

/** Thrown when `extract` is given an output array shorter than SMART_TURN_FEATURE_LENGTH. */
export class FeatureOutputTooSmallError extends VoiceError {
  constructor(lengthGiven: number) {
    super('VE_FEATURES_OUTPUT_TOO_SMALL', `the feature output needs ${SMART_TURN_FEATURE_LENGTH} floats, got ${lengthGiven}`);
    this.name = 'FeatureOutputTooSmallError';
  }
}

/** Thrown when PFFFT cannot be set up or its buffers cannot be allocated. */
export class FeatureExtractorInitError extends VoiceError {
  constructor(message: string) {
    super('VE_FEATURES_INIT', message);
    this.name = 'FeatureExtractorInitError';
  }
}

/** torch.hann_window(400) / np.hanning(401)[:-1]: periodic, so the frame tiles with hop 160 as in training. */
function periodicHannWindow(length: number): Float32Array {
  const window = new Float32Array(length);
  for (let n = 0; n < length; n++) window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / length);
  return window;
}

function hertzToMelSlaney(frequencyHz: number): number {
  // Linear below 1 kHz, logarithmic above (Slaney's Auditory Toolbox, librosa htk=False).
  return frequencyHz < 1000 ? (3 * frequencyHz) / 200 : 15 + Math.log(frequencyHz / 1000) * (27 / Math.log(6.4));
}

function melToHertzSlaney(mel: number): number {
  return mel < 15 ? (200 * mel) / 3 : 1000 * Math.exp((Math.log(6.4) / 27) * (mel - 15));
}

/** Sparse triangular filters: filter m covers bins [firstBin[m], firstBin[m] + binCount[m]) with weights at weightOffset[m]. */
interface MelFilterbank {
  firstBin: Int32Array;
  binCount: Int32Array;
  weightOffset: Int32Array;
  weights: Float64Array;
}

function buildMelFilterbank(): MelFilterbank {
  const melMin = hertzToMelSlaney(0);
  const melMax = hertzToMelSlaney(SMART_TURN_SAMPLE_RATE / 2);
  const filterHz = new Float64Array(SMART_TURN_MEL_BINS + 2);
  for (let i = 0; i < filterHz.length; i++) filterHz[i] = melToHertzSlaney(melMin + ((melMax - melMin) * i) / (SMART_TURN_MEL_BINS + 1));

  const firstBin = new Int32Array(SMART_TURN_MEL_BINS);
  const binCount = new Int32Array(SMART_TURN_MEL_BINS);
  const weightOffset = new Int32Array(SMART_TURN_MEL_BINS);
  const weightList: number[] = [];
  for (let m = 0; m < SMART_TURN_MEL_BINS; m++) {
    const areaNormalisation = 2 / (filterHz[m + 2] - filterHz[m]);
    weightOffset[m] = weightList.length;
    firstBin[m] = -1;
    for (let k = 0; k < FREQUENCY_BINS; k++) {
      const binHz = (k * (SMART_TURN_SAMPLE_RATE / 2)) / (FREQUENCY_BINS - 1);
      const rising = (binHz - filterHz[m]) / (filterHz[m + 1] - filterHz[m]);
      const falling = (filterHz[m + 2] - binHz) / (filterHz[m + 2] - filterHz[m + 1]);
      const weight = Math.max(0, Math.min(rising, falling)) * areaNormalisation;
      if (weight > 0) {
        if (firstBin[m] < 0) firstBin[m] = k;
        // Triangles are convex, so the non-zero bins are contiguous; zero gaps cannot occur inside one.
        weightList.push(weight);
      }
    }
    binCount[m] = weightList.length - weightOffset[m];
    if (firstBin[m] < 0) firstBin[m] = 0; // a filter narrower than one bin stays all-zero, as in the reference
  }
  return { firstBin, binCount, weightOffset, weights: Float64Array.from(weightList) };
}

/**
 * Computes Smart Turn v3 `input_features` for one clip. One instance per thread (see `loadFeatureExtractor`);
 * `extract` is synchronous and not re-entrant, which JavaScript's run-to-completion guarantees.
 */
export class SmartTurnFeatureExtractor {
  readonly #module: PffftModule;
  readonly #setupPtr: WasmPointer;
  /** TRANSFORM_SIZE floats; the upper half stays zero (the frame's zero padding). */
  readonly #inputPtr: WasmPointer;
  readonly #outputPtr: WasmPointer;
  readonly #workPtr: WasmPointer;
  readonly #window = periodicHannWindow(FRAME_SAMPLES);
  readonly #mel = buildMelFilterbank();
  /** The normalised, reflect-padded 8 s buffer; reused by every call. */
  readonly #padded = new Float32Array(PADDED_SAMPLES);
  readonly #power = new Float64Array(FREQUENCY_BINS);

  /** Use `loadFeatureExtractor()`; this is public only so that tests and benches can build a private instance. */
  constructor(module: PffftModule) {
    if (!isPffftSize(TRANSFORM_SIZE, PFFFT_REAL)) throw new FeatureExtractorInitError(`PFFFT cannot transform ${TRANSFORM_SIZE} points`);
    this.#module = module;
    this.#setupPtr = module._pffft_new_setup(TRANSFORM_SIZE, PFFFT_REAL);
    this.#inputPtr = module._pffft_aligned_malloc(TRANSFORM_SIZE * 4);
    this.#outputPtr = module._pffft_aligned_malloc(TRANSFORM_SIZE * 4);
    this.#workPtr = module._pffft_aligned_malloc(TRANSFORM_SIZE * 4);
    if (this.#setupPtr === 0 || this.#inputPtr === 0 || this.#outputPtr === 0 || this.#workPtr === 0) {
      throw new FeatureExtractorInitError('PFFFT setup or buffer allocation failed');
    }
    module.HEAPF32.fill(0, this.#inputPtr >> 2, (this.#inputPtr >> 2) + TRANSFORM_SIZE);
  }

  /**
   * Features of the last 8 s of `audio16k` (float32 PCM at 16 kHz, any length; shorter clips are
   * zero-padded at the front). Writes into `out` when given (at least SMART_TURN_FEATURE_LENGTH floats)
   * and returns it, laid out [80 mel bins][800 frames].
   */
  extract(audio16k: Float32Array, out?: Float32Array): Float32Array {
    if (out !== undefined && out.length < SMART_TURN_FEATURE_LENGTH) throw new FeatureOutputTooSmallError(out.length);
    const features = out ?? new Float32Array(SMART_TURN_FEATURE_LENGTH);
    const frontPadSamples = this.#normaliseAndPad(audio16k);

    // Frames that lie wholly in the (constant) front padding have identical spectra: compute the first,
    // copy it. A 2 s clip skips three quarters of the transforms.
    const constantFrames = frontPadSamples > CENTER_PAD_SAMPLES ? Math.floor((frontPadSamples - CENTER_PAD_SAMPLES) / HOP_SAMPLES) + 1 : 0;
    let maxLog = -Infinity;
    for (let frame = 0; frame < SMART_TURN_FRAMES; frame++) {
      if (frame > 0 && frame < constantFrames) {
        for (let m = 0; m < SMART_TURN_MEL_BINS; m++) features[m * SMART_TURN_FRAMES + frame] = features[m * SMART_TURN_FRAMES];
        continue;
      }
      maxLog = Math.max(maxLog, this.#logMelFrame(frame, features));
    }

    const floor = maxLog - DYNAMIC_RANGE_LOG10;
    for (let i = 0; i < SMART_TURN_FEATURE_LENGTH; i++) {
      const value = features[i];
      features[i] = ((value > floor ? value : floor) + 4) / 4;
    }
    return features;
  }

  /** Fills #padded with the normalised clip and its reflect padding; returns how many zeros were prepended. */
  #normaliseAndPad(audio16k: Float32Array): number {
    const keptSamples = Math.min(audio16k.length, SMART_TURN_SAMPLES);
    const frontPadSamples = SMART_TURN_SAMPLES - keptSamples;
    const kept = audio16k.subarray(audio16k.length - keptSamples);

    // Two-pass float64 statistics over the padded buffer (the zeros count), for a variance free of cancellation.
    let sum = 0;
    for (let i = 0; i < keptSamples; i++) sum += kept[i];
    const mean = sum / SMART_TURN_SAMPLES;
    let squares = frontPadSamples * mean * mean;
    for (let i = 0; i < keptSamples; i++) {
      const d = kept[i] - mean;
      squares += d * d;
    }
    const inverseStd = 1 / Math.sqrt(squares / SMART_TURN_SAMPLES + NORMALISE_VARIANCE_EPSILON);

    const padded = this.#padded;
    const start = CENTER_PAD_SAMPLES;
    padded.fill(-mean * inverseStd, start, start + frontPadSamples);
    for (let i = 0; i < keptSamples; i++) padded[start + frontPadSamples + i] = (kept[i] - mean) * inverseStd;
    // numpy "reflect": mirror about the edge sample without repeating it.
    const last = start + SMART_TURN_SAMPLES - 1;
    for (let j = 1; j <= CENTER_PAD_SAMPLES; j++) {
      padded[start - j] = padded[start + j];
      padded[last + j] = padded[last - j];
    }
    return frontPadSamples;
  }

  /** Writes column `frame` of the log10 mel spectrogram into `features`; returns the column's maximum. */
  #logMelFrame(frame: number, features: Float32Array): number {
    const heap = this.#module.HEAPF32; // re-read: memory growth elsewhere in the instance detaches old views
    const inputIndex = this.#inputPtr >> 2;
    const padded = this.#padded;
    const window = this.#window;
    const offset = frame * HOP_SAMPLES;
    for (let n = 0; n < FRAME_SAMPLES; n++) heap[inputIndex + n] = padded[offset + n] * window[n];
    this.#module._pffft_transform_ordered(this.#setupPtr, this.#inputPtr, this.#outputPtr, this.#workPtr, PFFFT_FORWARD);

    // Ordered real output: [X0, X400, Re X1, Im X1, ...]; bin k of the 400-point DFT is bin 2k of 800.
    const o = this.#outputPtr >> 2;
    const power = this.#power;
    power[0] = heap[o] * heap[o];
    power[FREQUENCY_BINS - 1] = heap[o + 1] * heap[o + 1];
    for (let k = 1; k < FREQUENCY_BINS - 1; k++) {
      const re = heap[o + 4 * k];
      const im = heap[o + 4 * k + 1];
      power[k] = re * re + im * im;
    }

    const { firstBin, binCount, weightOffset, weights } = this.#mel;
    let maxLog = -Infinity;
    for (let m = 0; m < SMART_TURN_MEL_BINS; m++) {
      let energy = 0;
      const first = firstBin[m];
      const w = weightOffset[m];
      for (let j = 0; j < binCount[m]; j++) energy += weights[w + j] * power[first + j];
      const log = Math.log10(energy > MEL_FLOOR ? energy : MEL_FLOOR);
      features[m * SMART_TURN_FRAMES + frame] = log;
      if (log > maxLog) maxLog = log;
    }
    return maxLog;
  }
}

let extractorPromise: Promise<SmartTurnFeatureExtractor> | undefined;

/** The thread's feature extractor, created on first use (loads PFFFT and precomputes window and filterbank). */
export function loadFeatureExtractor(): Promise<SmartTurnFeatureExtractor> {
  extractorPromise ??= loadPffftModule().then(
    (module) => new SmartTurnFeatureExtractor(module),
    (error: unknown) => {
      extractorPromise = undefined;
      throw error;
    },
  );
  return extractorPromise;
}
