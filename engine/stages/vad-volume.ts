/**
 * The loudness gate of Pipecat's VAD (`VADParams.min_volume`, 0.6): a window counts as speech only if
 * the model is confident AND the recent audio is loud enough. Pipecat measures the last 400 ms with
 * ITU-R BS.1770 integrated loudness (libloudness through the `loudness` package: K-weighting, one 400 ms
 * gating block, the -70 LUFS absolute gate, a histogram of 0.1 LU bins), maps -110..-10 LUFS to 0..1 and
 * smooths it exponentially (factor 0.2) window by window (`AudioVolumeTracker`, `exp_smoothing`). Until
 * 400 ms of audio have been seen the volume reads 0.
 *
 * Its effect: speech is confirmed a few windows later after silence (the smoothed volume has to climb
 * past the gate first), and a short quiet utterance after a pause may not count at all. Pure logic, one
 * instance per stream, positions in 16 kHz samples.
 */
import { VoiceError } from '../errors.ts';

export interface VadVolumeOptions {
  /** Smoothed volume (0-1) below which no window counts as speech (Pipecat 0.6). 0 turns the gate off. */
  minVolume: number;
  sampleRate: number;
}

const SMOOTHING = 0.2;
const ABSOLUTE_GATE_LUFS = -70;
const BIN_LU = 0.1;
const HISTOGRAM_BINS = 1000;
const QUIET_LUFS = -110;
const LOUD_LUFS = -10;

export class VadVolumeConfigError extends VoiceError {
  constructor(message: string) {
    super('VE_VAD_CONFIG', message, { status: 400 });
    this.name = 'VadVolumeConfigError';
  }
}

const loudnessToEnergy = (lufs: number): number => 10 ** ((lufs + 0.691) / 10);
const energyToLoudness = (energy: number): number => 10 * Math.log10(energy) - 0.691;
const ABSOLUTE_GATE_ENERGY = loudnessToEnergy(ABSOLUTE_GATE_LUFS);
const TOP_BIN_ENERGY = loudnessToEnergy((HISTOGRAM_BINS - 1) * BIN_LU + ABSOLUTE_GATE_LUFS);

/** BS.1770 K-weighting (high shelf then high pass) as one 4th-order filter, for `sampleRate` (libebur128's design). */
export function kWeighting(sampleRate: number): { b: Float64Array; a: Float64Array } {
  const shelfHz = 1681.974450955533;
  const gainDb = 3.999843853973347;
  const shelfQ = 0.7071752369554196;
  const vh = 10 ** (gainDb / 20);
  const vb = vh ** 0.4996667741545416;
  let k = Math.tan((Math.PI * shelfHz) / sampleRate);
  const a0 = 1 + k / shelfQ + k * k;
  const pb = [(vh + (vb * k) / shelfQ + k * k) / a0, (2 * (k * k - vh)) / a0, (vh - (vb * k) / shelfQ + k * k) / a0];
  const pa = [1, (2 * (k * k - 1)) / a0, (1 - k / shelfQ + k * k) / a0];
  const rb = [1, -2, 1];
  const highPassHz = 38.13547087602444;
  const highPassQ = 0.5003270373238773;
  k = Math.tan((Math.PI * highPassHz) / sampleRate);
  const ra = [1, (2 * (k * k - 1)) / (1 + k / highPassQ + k * k), (1 - k / highPassQ + k * k) / (1 + k / highPassQ + k * k)];
  const b = Float64Array.of(pb[0] * rb[0], pb[0] * rb[1] + pb[1] * rb[0], pb[0] * rb[2] + pb[1] * rb[1] + pb[2] * rb[0], pb[1] * rb[2] + pb[2] * rb[1], pb[2] * rb[2]);
  const a = Float64Array.of(pa[0] * ra[0], pa[0] * ra[1] + pa[1] * ra[0], pa[0] * ra[2] + pa[1] * ra[1] + pa[2] * ra[0], pa[1] * ra[2] + pa[2] * ra[1], pa[2] * ra[2]);
  return { b, a };
}

/**
 * Integrated loudness (LUFS) of exactly one 400 ms gating block (four 100 ms sub-blocks), as libloudness
 * reports it: the block's mean K-weighted energy, quantised to the centre of its 0.1 LU histogram bin;
 * -Infinity under the absolute gate.
 */
export function blockLoudness(samples: Float32Array, filter: { b: Float64Array; a: Float64Array }, subBlockSamples: number): number {
  const [b0, b1, b2, b3, b4] = filter.b;
  const [, a1, a2, a3, a4] = filter.a;
  let v1 = 0;
  let v2 = 0;
  let v3 = 0;
  let v4 = 0;
  // Same order of additions as libloudness: each 100 ms sub-block summed four squares at a time
  // (libstdc++'s std::reduce), then the four sub-block sums, newest first.
  const subBlocks = Math.floor(samples.length / subBlockSamples);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let block = 0; block < subBlocks; block++) {
    let sum = 0;
    const end = (block + 1) * subBlockSamples;
    for (let i = block * subBlockSamples; i < end; i += 4) {
      let v0 = samples[i] - a1 * v1 - a2 * v2 - a3 * v3 - a4 * v4;
      const y0 = b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4;
      v4 = samples[i + 1] - a1 * v0 - a2 * v1 - a3 * v2 - a4 * v3;
      const y1 = b0 * v4 + b1 * v0 + b2 * v1 + b3 * v2 + b4 * v3;
      v3 = samples[i + 2] - a1 * v4 - a2 * v0 - a3 * v1 - a4 * v2;
      const y2 = b0 * v3 + b1 * v4 + b2 * v0 + b3 * v1 + b4 * v2;
      v2 = samples[i + 3] - a1 * v3 - a2 * v4 - a3 * v0 - a4 * v1;
      const y3 = b0 * v2 + b1 * v3 + b2 * v4 + b3 * v0 + b4 * v1;
      // Rename the state back: newest first.
      const n1 = v2;
      const n2 = v3;
      const n3 = v4;
      const n4 = v0;
      v1 = n1;
      v2 = n2;
      v3 = n3;
      v4 = n4;
      v0 = 0;
      sum += y0 * y0 + y1 * y1 + (y2 * y2 + y3 * y3);
    }
    if (block === 0) s0 = sum;
    else if (block === 1) s1 = sum;
    else if (block === 2) s2 = sum;
    else s3 = sum;
  }
  const energy = (0 + (s3 + s2 + (s1 + s0))) / samples.length;
  if (!(energy >= ABSOLUTE_GATE_ENERGY)) return -Infinity;
  const bin = energy >= TOP_BIN_ENERGY ? HISTOGRAM_BINS - 1 : Math.floor((energyToLoudness(energy) - ABSOLUTE_GATE_LUFS) / BIN_LU);
  return energyToLoudness(loudnessToEnergy(bin * BIN_LU + ABSOLUTE_GATE_LUFS + BIN_LU / 2));
}

export class VadVolume {
  readonly minVolume: number;
  /** Samples in the 400 ms loudness window. */
  readonly windowSamples: number;
  readonly #subBlockSamples: number;
  readonly #filter: { b: Float64Array; a: Float64Array };
  #smoothed = 0;

  constructor(options: VadVolumeOptions) {
    if (!(options.minVolume >= 0 && options.minVolume <= 1)) throw new VadVolumeConfigError(`minVolume must be in [0, 1], got ${options.minVolume}`);
    this.minVolume = options.minVolume;
    this.#subBlockSamples = Math.round(options.sampleRate / 10);
    // Four sub-blocks of a multiple of four samples (16 kHz: 4 x 1600), as the filter loop assumes.
    if (this.#subBlockSamples % 4 !== 0) throw new VadVolumeConfigError(`the loudness gate needs a sample rate whose 100 ms is a multiple of 4 samples, got ${options.sampleRate}`);
    this.windowSamples = 4 * this.#subBlockSamples;
    this.#filter = kWeighting(options.sampleRate);
  }

  get enabled(): boolean {
    return this.minVolume > 0;
  }

  /**
   * Feeds the next window: `recent` is the stream's last 400 ms up to the end of that window (shorter
   * while the stream is younger). Returns the smoothed volume.
   */
  afterWindow(recent: Float32Array): number {
    let raw = 0;
    if (recent.length >= this.windowSamples && !isDigitalSilence(recent)) {
      const lufs = blockLoudness(recent, this.#filter, this.#subBlockSamples);
      raw = Math.max(0, Math.min(1, (lufs - QUIET_LUFS) / (LOUD_LUFS - QUIET_LUFS)));
    }
    this.#smoothed = this.#smoothed + SMOOTHING * (raw - this.#smoothed);
    return this.#smoothed;
  }

  /** Whether a window of this smoothed volume may count as speech. */
  loudEnough(smoothedVolume: number): boolean {
    return smoothedVolume >= this.minVolume;
  }

  exportState(): number {
    return this.#smoothed;
  }

  importState(smoothedVolume: number): void {
    this.#smoothed = smoothedVolume;
  }
}

function isDigitalSilence(samples: Float32Array): boolean {
  for (let i = 0; i < samples.length; i++) if (samples[i] !== 0) return false;
  return true;
}
