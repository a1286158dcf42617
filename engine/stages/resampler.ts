/**
 * Streaming mono int16 sample-rate conversion on the SpeexDSP resampler (WebAssembly, SIMD build).
 *
 * One `Resampler` per call and direction keeps its filter memory across `process` calls, so frames of any
 * size can be fed and the output is continuous. The WebAssembly instance and the scratch buffers that
 * carry samples in and out are shared by every resampler of the thread: `process` is synchronous, so no
 * two resamplers of a thread can use them at once, and a thousand calls cost one pair of buffers instead
 * of a thousand.
 */
import { ClosedError, VoiceError } from '../errors.ts';
import { loadSpeexResamplerModule, type SpeexResamplerModule, type WasmPointer } from '../../wasm/speex-resampler.ts';

/**
 * Speex quality 0..10. Quality 5 is the SpeexDSP "desktop" default (80-tap base filter, Kaiser-10 window):
 * its stop band keeps 8-24 kHz content from aliasing into the 4-8 kHz mel bands that Silero and Smart Turn
 * read, while costing about 14 us per 20 ms 48 kHz frame against 10 us at quality 3 (FIELD-NOTES,
 * re-measured in bench/dsp.bench.ts): well under 0.1 % of a core per call.
 */
export const DEFAULT_RESAMPLER_QUALITY = 5;

/** Thrown by `Resampler.create` when `loadResamplerModule()` has not completed on this thread. */
export class ResamplerNotLoadedError extends VoiceError {
  constructor() {
    super('VE_RESAMPLER_NOT_LOADED', 'the resampler WebAssembly module is not loaded on this thread: await loadResamplerModule() first', {
      status: 503,
      retryable: true,
    });
    this.name = 'ResamplerNotLoadedError';
  }
}

/** Thrown for sample rates or a quality the resampler cannot use. */
export class ResamplerOptionsError extends VoiceError {
  constructor(message: string) {
    super('VE_RESAMPLER_INVALID_OPTIONS', message, { status: 400 });
    this.name = 'ResamplerOptionsError';
  }
}

/** Thrown when the Speex library reports an error code (out of memory, bad state). */
export class ResamplerFailedError extends VoiceError {
  constructor(operation: string, speexErrorCode: number) {
    super('VE_RESAMPLER_FAILED', `speex resampler ${operation} failed with error code ${speexErrorCode}`);
    this.name = 'ResamplerFailedError';
  }
}

const MAX_SAMPLE_RATE = 768_000;
const MAX_QUALITY = 10;
/** Room beyond in*ratio for the fractional phase carried between calls (Speex emits at most one extra sample). */
const OUTPUT_SLACK_SAMPLES = 16;

/** Thread-wide WebAssembly state: the module plus growable scratch buffers and the in/out length cells. */
interface SpeexThreadState {
  module: SpeexResamplerModule;
  /** Two uint32 cells: [input length, output length] for `process_int`. */
  lengthsPtr: WasmPointer;
  /** One int32 cell for `init`'s error code. */
  errorPtr: WasmPointer;
  inputPtr: WasmPointer;
  inputCapacitySamples: number;
  outputPtr: WasmPointer;
  outputCapacitySamples: number;
}

let thread: SpeexThreadState | undefined;
let threadPromise: Promise<void> | undefined;

/** Loads the Speex WebAssembly module for this thread (idempotent); `Resampler.create` is synchronous afterwards. */
export function loadResamplerModule(): Promise<void> {
  threadPromise ??= loadSpeexResamplerModule().then(
    (module) => {
      const initialCapacitySamples = 4096; // a 20 ms frame at 48 kHz is 960 samples; growth is rare
      const cells = module._malloc(12);
      thread = {
        module,
        lengthsPtr: cells,
        errorPtr: cells + 8,
        inputPtr: module._malloc(initialCapacitySamples * 2),
        inputCapacitySamples: initialCapacitySamples,
        outputPtr: module._malloc(initialCapacitySamples * 2),
        outputCapacitySamples: initialCapacitySamples,
      };
    },
    (error: unknown) => {
      threadPromise = undefined;
      throw error;
    },
  );
  return threadPromise;
}

function growScratch(state: SpeexThreadState, inputSamples: number, outputSamples: number): void {
  // Grow to the next power of two so that a stream of slowly growing frames does not realloc every call.
  if (inputSamples > state.inputCapacitySamples) {
    state.module._free(state.inputPtr);
    state.inputCapacitySamples = 2 ** Math.ceil(Math.log2(inputSamples));
    state.inputPtr = state.module._malloc(state.inputCapacitySamples * 2);
  }
  if (outputSamples > state.outputCapacitySamples) {
    state.module._free(state.outputPtr);
    state.outputCapacitySamples = 2 ** Math.ceil(Math.log2(outputSamples));
    state.outputPtr = state.module._malloc(state.outputCapacitySamples * 2);
  }
}

/** Options for `Resampler.create`. Rates in Hz. */
export interface ResamplerOptions {
  inputSampleRate: number;
  outputSampleRate: number;
  /** Speex quality 0..10; defaults to `DEFAULT_RESAMPLER_QUALITY`. */
  quality?: number;
}

/** A streaming mono int16 resampler for one direction of one call. */
export class Resampler {
  readonly inputSampleRate: number;
  readonly outputSampleRate: number;
  readonly quality: number;
  /** 0 for an identity resampler. */
  #statePtr: WasmPointer;
  #closed = false;

  private constructor(inputSampleRate: number, outputSampleRate: number, quality: number, statePtr: WasmPointer) {
    this.inputSampleRate = inputSampleRate;
    this.outputSampleRate = outputSampleRate;
    this.quality = quality;
    this.#statePtr = statePtr;
  }

  /** Synchronous once `loadResamplerModule()` has resolved on this thread. */
  static create(options: ResamplerOptions): Resampler {
    const { inputSampleRate, outputSampleRate } = options;
    const quality = options.quality ?? DEFAULT_RESAMPLER_QUALITY;
    for (const [name, rate] of [['inputSampleRate', inputSampleRate], ['outputSampleRate', outputSampleRate]] as const) {
      if (!Number.isInteger(rate) || rate <= 0 || rate > MAX_SAMPLE_RATE) {
        throw new ResamplerOptionsError(`${name} must be an integer in 1..${MAX_SAMPLE_RATE} Hz, got ${rate}`);
      }
    }
    if (!Number.isInteger(quality) || quality < 0 || quality > MAX_QUALITY) {
      throw new ResamplerOptionsError(`quality must be an integer in 0..${MAX_QUALITY}, got ${quality}`);
    }
    if (thread === undefined) throw new ResamplerNotLoadedError();
    // Same rates: no filter, so no WebAssembly state and no latency.
    if (inputSampleRate === outputSampleRate) return new Resampler(inputSampleRate, outputSampleRate, quality, 0);

    const { module, errorPtr } = thread;
    module.HEAP32[errorPtr >> 2] = 0;
    const statePtr = module._speex_resampler_init(1, inputSampleRate, outputSampleRate, quality, errorPtr);
    if (statePtr === 0) throw new ResamplerFailedError('init', module.HEAP32[errorPtr >> 2]);
    return new Resampler(inputSampleRate, outputSampleRate, quality, statePtr);
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * How many output samples the signal is delayed by the filter: output sample `n` corresponds to input
   * time (n - outputLatencySamples) / outputSampleRate. 0 for identity.
   */
  get outputLatencySamples(): number {
    if (this.#statePtr === 0 || thread === undefined) return 0;
    return thread.module._speex_resampler_get_output_latency(this.#statePtr);
  }

  /**
   * Converts the next chunk of the stream. All input is consumed; the output length is
   * about `input.length * outputSampleRate / inputSampleRate` and varies by one sample from call to call
   * when the ratio is not an integer. Returns a new array that the caller owns.
   */
  process(input: Int16Array): Int16Array {
    if (this.#closed) throw new ClosedError('Resampler');
    if (this.#statePtr === 0) return input.slice();
    if (input.length === 0) return new Int16Array(0);
    const state = thread!; // a non-zero state pointer implies the thread state exists

    const expectedOutputSamples = Math.ceil((input.length * this.outputSampleRate) / this.inputSampleRate) + OUTPUT_SLACK_SAMPLES;
    growScratch(state, input.length, expectedOutputSamples);
    const { module, lengthsPtr, inputPtr, outputPtr, outputCapacitySamples } = state;
    // Views are re-read after growScratch: a malloc may have grown memory and detached older views.
    module.HEAP16.set(input, inputPtr >> 1);

    let consumedSamples = 0;
    let writtenSamples = 0;
    while (consumedSamples < input.length) {
      const lengths = module.HEAPU32;
      lengths[lengthsPtr >> 2] = input.length - consumedSamples;
      lengths[(lengthsPtr >> 2) + 1] = outputCapacitySamples - writtenSamples;
      const errorCode = module._speex_resampler_process_int(
        this.#statePtr,
        0,
        inputPtr + consumedSamples * 2,
        lengthsPtr,
        outputPtr + writtenSamples * 2,
        lengthsPtr + 4,
      );
      if (errorCode !== 0) throw new ResamplerFailedError('process', errorCode);
      const consumedNow = module.HEAPU32[lengthsPtr >> 2];
      const writtenNow = module.HEAPU32[(lengthsPtr >> 2) + 1];
      // The slack above makes one pass the rule; a pass that moves nothing would spin forever.
      if (consumedNow === 0 && writtenNow === 0) throw new ResamplerFailedError('process (no progress)', -1);
      consumedSamples += consumedNow;
      writtenSamples += writtenNow;
    }
    const outputIndex = outputPtr >> 1;
    return module.HEAP16.slice(outputIndex, outputIndex + writtenSamples);
  }

  /** Frees the WebAssembly state. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#statePtr !== 0 && thread !== undefined) thread.module._speex_resampler_destroy(this.#statePtr);
    this.#statePtr = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
