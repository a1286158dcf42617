/**
 * Thin typed loader for the project's own `k-weighted-energy.wasm` (source `k-weighted-energy.c`, built by
 * `scripts/build-wasm.sh`; the binary is committed). Freestanding, static buffers, a memory that never
 * grows; one instance per thread.
 */
import { readFileSync } from 'node:fs';
import type { WasmPointer } from './speex-resampler.ts';

export interface KWeightedEnergyModule {
  readonly memory: WebAssembly.Memory;
  /** float32[max_blocks() * block_samples()], block-major. */
  blocks_ptr(): WasmPointer;
  /** float64[9]: b0..b4, a1..a4 of the K-weighting filter. */
  coefficients_ptr(): WasmPointer;
  /** float64[max_blocks()]: the output of `compute`. */
  energies_ptr(): WasmPointer;
  max_blocks(): number;
  block_samples(): number;
  /** Mean K-weighted energy of blocks[0 .. count), each of 4 sub-blocks of `subBlockSamples`. */
  compute(count: number, subBlockSamples: number): void;
}

let instance: KWeightedEnergyModule | undefined;

export function loadKWeightedEnergyModule(): KWeightedEnergyModule {
  if (instance === undefined) {
    const bytes = readFileSync(new URL('./k-weighted-energy.wasm', import.meta.url));
    instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as KWeightedEnergyModule;
  }
  return instance;
}
