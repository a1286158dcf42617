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
import { loadKWeightedEnergyModule, type KWeightedEnergyModule } from '../../wasm/k-weighted-energy.ts';
import type { AudioHistory } from './audio-history.ts';

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
 * Integrated loudness (LUFS) of one 400 ms gating block of mean K-weighted energy `energy`, as libloudness
 * reports it: quantised to the centre of its 0.1 LU histogram bin; -Infinity under the absolute gate.
 */
export function blockLoudness(energy: number): number {
  if (!(energy >= ABSOLUTE_GATE_ENERGY)) return -Infinity;
  const bin = energy >= TOP_BIN_ENERGY ? HISTOGRAM_BINS - 1 : Math.floor((energyToLoudness(energy) - ABSOLUTE_GATE_LUFS) / BIN_LU);
  return energyToLoudness(loudnessToEnergy(bin * BIN_LU + ABSOLUTE_GATE_LUFS + BIN_LU / 2));
}

/**
 * The K-weighted energies of several 400 ms blocks at once, in WebAssembly (`wasm/k-weighted-energy.c`):
 * the filter is one long dependency chain per sample, so blocks of different calls go through it side by
 * side. One instance per thread; the caller writes each block into `slot(i)` and calls `compute`.
 */
export class KWeightedEnergies {
  readonly sampleRate: number;
  /** Samples in one block (400 ms). */
  readonly blockSamples: number;
  readonly maxBlocks: number;
  readonly #module: KWeightedEnergyModule;
  readonly #slots: Float32Array[];
  readonly #energies: Float64Array;
  readonly #subBlockSamples: number;

  constructor(sampleRate: number) {
    this.#subBlockSamples = Math.round(sampleRate / 10);
    // Four sub-blocks of a multiple of four samples (16 kHz: 4 x 1600), as the filter loop assumes.
    if (this.#subBlockSamples % 4 !== 0) throw new VadVolumeConfigError(`the loudness gate needs a sample rate whose 100 ms is a multiple of 4 samples, got ${sampleRate}`);
    this.sampleRate = sampleRate;
    this.blockSamples = 4 * this.#subBlockSamples;
    this.#module = loadKWeightedEnergyModule();
    if (this.blockSamples > this.#module.block_samples()) throw new VadVolumeConfigError(`the loudness gate supports at most ${(this.#module.block_samples() / 4) * 10} Hz, got ${sampleRate}`);
    this.maxBlocks = this.#module.max_blocks();
    const buffer = this.#module.memory.buffer;
    const { b, a } = kWeighting(sampleRate);
    new Float64Array(buffer, this.#module.coefficients_ptr(), 9).set([b[0], b[1], b[2], b[3], b[4], a[1], a[2], a[3], a[4]]);
    const stride = this.#module.block_samples();
    this.#slots = Array.from({ length: this.maxBlocks }, (_, i) => new Float32Array(buffer, this.#module.blocks_ptr() + 4 * i * stride, this.blockSamples));
    this.#energies = new Float64Array(buffer, this.#module.energies_ptr(), this.maxBlocks);
  }

  /** Where block `index` (0 .. maxBlocks - 1) goes before `compute`. */
  slot(index: number): Float32Array {
    return this.#slots[index];
  }

  /** Mean K-weighted energy of the first `count` slots; valid until the next call (a view). */
  compute(count: number): Float64Array {
    this.#module.compute(count, this.#subBlockSamples);
    return this.#energies.subarray(0, count);
  }
}

const energiesBySampleRate = new Map<number, KWeightedEnergies>();

/** The thread's batch calculator for `sampleRate` (the filter depends on it). */
export function kWeightedEnergies(sampleRate: number): KWeightedEnergies {
  let energies = energiesBySampleRate.get(sampleRate);
  if (!energies) {
    energies = new KWeightedEnergies(sampleRate);
    energiesBySampleRate.set(sampleRate, energies);
  }
  return energies;
}

export class VadVolume {
  readonly minVolume: number;
  /** Samples in the 400 ms loudness window. */
  readonly windowSamples: number;
  readonly #sampleRate: number;
  #smoothed = 0;

  constructor(options: VadVolumeOptions) {
    if (!(options.minVolume >= 0 && options.minVolume <= 1)) throw new VadVolumeConfigError(`minVolume must be in [0, 1], got ${options.minVolume}`);
    this.minVolume = options.minVolume;
    this.#sampleRate = options.sampleRate;
    this.windowSamples = 4 * Math.round(options.sampleRate / 10);
  }

  get enabled(): boolean {
    return this.minVolume > 0;
  }

  /**
   * Feeds the next window, given the mean K-weighted energy of the stream's last 400 ms up to its end
   * (see `KWeightedEnergies`), or null while the stream is younger than that or the 400 ms are digital
   * silence. Returns the smoothed volume.
   */
  afterEnergy(energy: number | null): number {
    const raw = energy === null ? 0 : Math.max(0, Math.min(1, (blockLoudness(energy) - QUIET_LUFS) / (LOUD_LUFS - QUIET_LUFS)));
    this.#smoothed = this.#smoothed + SMOOTHING * (raw - this.#smoothed);
    return this.#smoothed;
  }

  /** `afterEnergy` for one stream on its own: `recent` is its last 400 ms (shorter while younger). */
  afterWindow(recent: Float32Array): number {
    if (recent.length < this.windowSamples || isDigitalSilence(recent)) return this.afterEnergy(null);
    const energies = kWeightedEnergies(this.#sampleRate);
    energies.slot(0).set(recent.subarray(recent.length - this.windowSamples));
    return this.afterEnergy(energies.compute(1)[0]);
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

/** Every sample exactly 0: such a block is under the gate without filtering it. */
export function isDigitalSilence(samples: Float32Array): boolean {
  for (let i = 0; i < samples.length; i++) if (samples[i] !== 0) return false;
  return true;
}

/** One stream's window for `gateWindows`: its gate, its audio and where the window ends. */
export interface GateWindow {
  volume: VadVolume;
  history: AudioHistory;
  endSamples: number;
}

/**
 * Feeds every stream's window to its gate and says which may count as speech, measuring the streams'
 * last 400 ms together (several per WebAssembly run). Each stream must appear at most once.
 */
export function gateWindows(windows: GateWindow[], energies: KWeightedEnergies): boolean[] {
  const loud = windows.map(() => true);
  const inSlots: number[] = [];
  const measure = (): void => {
    const measured = energies.compute(inSlots.length);
    inSlots.forEach((index, slot) => {
      const { volume } = windows[index];
      loud[index] = volume.loudEnough(volume.afterEnergy(measured[slot]));
    });
    inSlots.length = 0;
  };
  for (let i = 0; i < windows.length; i++) {
    const { volume, history, endSamples } = windows[i];
    if (!volume.enabled) continue;
    const block = history.copyRange(endSamples - volume.windowSamples, endSamples, energies.slot(inSlots.length));
    if (block.length < volume.windowSamples || isDigitalSilence(block)) {
      loud[i] = volume.loudEnough(volume.afterEnergy(null));
      continue;
    }
    inSlots.push(i);
    if (inSlots.length === energies.maxBlocks) measure();
  }
  if (inSlots.length > 0) measure();
  return loud;
}
