/**
 * Thin typed loader for PFFFT compiled to WebAssembly (`@echogarden/pffft-wasm`).
 *
 * The package's default export is the scalar build; this loader imports `/simd`. PFFFT only accepts
 * sizes N = 2^a 3^b 5^c with N a multiple of 32 for real transforms and of 16 for complex ones, and
 * every buffer it touches must be 16-byte aligned (use `_pffft_aligned_malloc`). One WebAssembly
 * instance per thread is enough, so the promise is cached at module level (module state is per thread).
 */
// @ts-expect-error The package ships no type declarations; PffftModule below types the exports used.
import PffftFactory from '@echogarden/pffft-wasm/simd';
import type { WasmPointer } from './speex-resampler.ts';

/** `pffft_transform_t` in pffft.h. */
export const PFFFT_REAL = 0;
export const PFFFT_COMPLEX = 1;
/** `pffft_direction_t` in pffft.h. */
export const PFFFT_FORWARD = 0;
export const PFFFT_BACKWARD = 1;

/** The raw exports of the PFFFT build that this project uses. */
export interface PffftModule {
  /** Re-read after any call that may allocate: memory growth replaces the underlying ArrayBuffer. */
  readonly HEAPF32: Float32Array;
  _malloc(sizeBytes: number): WasmPointer;
  _free(ptr: WasmPointer): void;
  /**
   * Returns 0 when N does not factor into 2, 3 and 5. A size that is not a multiple of 32 (real) or 16
   * (complex) fails a C assert, which aborts the whole instance: check with `isPffftSize` first.
   */
  _pffft_new_setup(n: number, transform: number): WasmPointer;
  _pffft_destroy_setup(setup: WasmPointer): void;
  /**
   * Unscaled transform with output in canonical order. For a real forward transform of N samples the
   * output is [X0, X(N/2), Re X1, Im X1, ..., Re X(N/2-1), Im X(N/2-1)]. Input and output may alias;
   * `work` may be 0 to use the stack.
   */
  _pffft_transform_ordered(setup: WasmPointer, input: WasmPointer, output: WasmPointer, work: WasmPointer, direction: number): void;
  _pffft_transform(setup: WasmPointer, input: WasmPointer, output: WasmPointer, work: WasmPointer, direction: number): void;
  _pffft_aligned_malloc(sizeBytes: number): WasmPointer;
  _pffft_aligned_free(ptr: WasmPointer): void;
  _pffft_simd_size(): number;
}

/** Whether PFFFT accepts a transform of `n` points (see the size rules in the file comment). */
export function isPffftSize(n: number, transform: number): boolean {
  const multiple = transform === PFFFT_REAL ? 32 : 16;
  if (!Number.isInteger(n) || n <= 0 || n % multiple !== 0) return false;
  let rest = n;
  for (const factor of [2, 3, 5]) while (rest % factor === 0) rest /= factor;
  return rest === 1;
}

let modulePromise: Promise<PffftModule> | undefined;

/** Loads (once per thread) the SIMD build of PFFFT. */
export function loadPffftModule(): Promise<PffftModule> {
  if (modulePromise === undefined) {
    modulePromise = (PffftFactory() as Promise<PffftModule>).catch((error: unknown) => {
      // A failed instantiation must not poison the cache: the next caller gets a fresh attempt.
      modulePromise = undefined;
      throw error;
    });
  }
  return modulePromise;
}
