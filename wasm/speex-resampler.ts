/**
 * Thin typed loader for the SpeexDSP resampler compiled to WebAssembly (`@echogarden/speex-resampler-wasm`).
 *
 * The package's default export is the non-SIMD build, about 4x slower per frame than the SIMD one
 * (FIELD-NOTES), so this loader imports `/simd` explicitly. The Emscripten factory instantiates a fresh
 * WebAssembly instance on every call; one instance per thread is enough because every resampler state
 * lives in that instance's heap, so the promise is cached at module level (module state is per thread).
 */
// @ts-expect-error The package ships no type declarations; SpeexResamplerModule below types the exports used.
import SpeexResamplerFactory from '@echogarden/speex-resampler-wasm/simd';

/** Pointer into the module's linear memory (byte offset). */
export type WasmPointer = number;

/** The raw exports of the SpeexDSP resampler build that this project uses. All lengths count samples per channel. */
export interface SpeexResamplerModule {
  /** Re-read after any call that may allocate: memory growth replaces the underlying ArrayBuffer. */
  readonly HEAP16: Int16Array;
  readonly HEAPU32: Uint32Array;
  readonly HEAP32: Int32Array;
  _malloc(sizeBytes: number): WasmPointer;
  _free(ptr: WasmPointer): void;
  /** Returns a state pointer, or 0 with an error code written to `errPtr` (int32). */
  _speex_resampler_init(channels: number, inputSampleRate: number, outputSampleRate: number, quality: number, errPtr: WasmPointer): WasmPointer;
  _speex_resampler_destroy(state: WasmPointer): void;
  /**
   * `inLenPtr`/`outLenPtr` point at uint32 values: on entry the samples available / room available,
   * on return the samples consumed / written. Returns 0 on success.
   */
  _speex_resampler_process_int(state: WasmPointer, channelIndex: number, inPtr: WasmPointer, inLenPtr: WasmPointer, outPtr: WasmPointer, outLenPtr: WasmPointer): number;
  _speex_resampler_get_input_latency(state: WasmPointer): number;
  _speex_resampler_get_output_latency(state: WasmPointer): number;
  _speex_resampler_reset_mem(state: WasmPointer): number;
  _speex_resampler_skip_zeros(state: WasmPointer): number;
}

let modulePromise: Promise<SpeexResamplerModule> | undefined;

/** Loads (once per thread) the SIMD build of the Speex resampler. */
export function loadSpeexResamplerModule(): Promise<SpeexResamplerModule> {
  if (modulePromise === undefined) {
    modulePromise = (SpeexResamplerFactory() as Promise<SpeexResamplerModule>).catch((error: unknown) => {
      // A failed instantiation must not poison the cache: the next caller gets a fresh attempt.
      modulePromise = undefined;
      throw error;
    });
  }
  return modulePromise;
}
