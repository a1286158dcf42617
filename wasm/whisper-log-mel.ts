/**
 * Thin typed loader for the project's own `whisper-log-mel.wasm` (source `whisper-log-mel.c`, built by
 * `scripts/build-wasm.sh`; the binary is committed). The module is freestanding: it imports nothing and
 * owns static buffers in a memory that never grows, so views made from `memory.buffer` stay valid. One
 * instance per thread (module state is per thread); `compute` is synchronous and not re-entrant.
 */
import { readFileSync } from 'node:fs';
import type { WasmPointer } from './speex-resampler.ts';

/** The exports of whisper-log-mel.wasm; every `*_ptr` returns the byte offset of a static array. */
export interface WhisperLogMelModule {
  readonly memory: WebAssembly.Memory;
  /** float32[128000]: the wrapper writes a clip's last `kept` samples at its end. */
  clip_ptr(): WasmPointer;
  /** float64[80 * 800], mel-major: the output of `compute`. */
  energies_ptr(): WasmPointer;
  /** float64[400]. */
  hann_ptr(): WasmPointer;
  /** float64[201] each: e^{-2 pi i k / 400}. */
  split_re_ptr(): WasmPointer;
  split_im_ptr(): WasmPointer;
  /** float64[150], [25], [20]: stage twiddles of the radix-4, radix-2 and first radix-5 stages. */
  twiddle4_re_ptr(): WasmPointer;
  twiddle4_im_ptr(): WasmPointer;
  twiddle2_re_ptr(): WasmPointer;
  twiddle2_im_ptr(): WasmPointer;
  twiddle5_re_ptr(): WasmPointer;
  twiddle5_im_ptr(): WasmPointer;
  /** float64[4]: cos(2 pi/5), cos(4 pi/5), sin(2 pi/5), sin(4 pi/5). */
  radix5_constants_ptr(): WasmPointer;
  /** float64[402] and int32[80] x 3: the sparse mel filterbank. */
  mel_weights_ptr(): WasmPointer;
  mel_first_ptr(): WasmPointer;
  mel_count_ptr(): WasmPointer;
  mel_offset_ptr(): WasmPointer;
  /** Normalises the clip and fills the energies; returns how many leading frames lie wholly in the front padding (all equal). */
  compute(keptSamples: number): number;
}

let instance: WhisperLogMelModule | undefined;

/** The thread's instance of whisper-log-mel.wasm (about 3 MB of static buffers), created on first use. */
export function loadWhisperLogMelModule(): WhisperLogMelModule {
  if (instance === undefined) {
    const bytes = readFileSync(new URL('./whisper-log-mel.wasm', import.meta.url));
    instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as WhisperLogMelModule;
  }
  return instance;
}
