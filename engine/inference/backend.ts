/**
 * One contract for the two ONNX Runtime builds the engine can use: onnxruntime-web (WebAssembly, runs in
 * any worker thread, no native addon) and onnxruntime-node (native CPU, faster, one addon per process).
 * Stages depend on `ModelSession` and `NeutralTensor` only, so a worker can switch backends by name.
 * Each ORT package is imported lazily by its adapter: a worker using only one never loads the other.
 */
import { ClosedError, VoiceError } from '../errors.ts';

export type BackendName = 'wasm' | 'native';

export const BACKEND_NAMES: readonly BackendName[] = ['wasm', 'native'];

/** A tensor that belongs to neither ORT package, so callers never import an ORT type. */
export type NeutralTensor =
  | { type: 'float32'; data: Float32Array; dims: number[] }
  | { type: 'int64'; data: BigInt64Array; dims: number[] };

export type TensorFeeds = Record<string, NeutralTensor>;

export interface SessionOptions {
  /**
   * Threads for one inference. Native: intra-op and inter-op threads of this session. WASM: the
   * runtime's thread count, which onnxruntime-web fixes once per thread (worker) at first use.
   */
  threads: number;
}

export interface ModelSession {
  readonly backend: BackendName;
  readonly modelPath: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model. Rejects with `ClosedError` after `release()`, with `InferenceError` when ORT fails. */
  run(feeds: TensorFeeds): Promise<TensorFeeds>;
  /** Frees the session. Idempotent. */
  release(): Promise<void>;
}

/** The model file could not be turned into a session (bad file, unsupported op, bad options). */
export class ModelLoadError extends VoiceError {
  constructor(backend: BackendName, modelPath: string, cause: unknown) {
    super('VE_MODEL_LOAD', `${backend} backend cannot load ${modelPath}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      status: 500,
      cause,
    });
    this.name = 'ModelLoadError';
  }
}

/** ORT rejected a run (wrong input names, shapes or types). */
export class InferenceError extends VoiceError {
  constructor(backend: BackendName, modelPath: string, cause: unknown) {
    super('VE_INFERENCE', `${backend} inference on ${modelPath} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      status: 500,
      cause,
    });
    this.name = 'InferenceError';
  }
}

/** Options that cannot be honoured, such as a second WASM thread count in the same thread. */
export class BackendConfigError extends VoiceError {
  constructor(message: string) {
    super('VE_BACKEND_CONFIG', message, { status: 500 });
    this.name = 'BackendConfigError';
  }
}

export async function createModelSession(backend: BackendName, modelPath: string, opts: SessionOptions): Promise<ModelSession> {
  if (!Number.isInteger(opts.threads) || opts.threads < 1) {
    throw new BackendConfigError(`threads must be a positive integer, got ${opts.threads}`);
  }
  if (backend === 'wasm') {
    const { createWebSession } = await import('./ort-web.ts');
    return createWebSession(modelPath, opts);
  }
  if (backend === 'native') {
    const { createNodeSession } = await import('./ort-node.ts');
    return createNodeSession(modelPath, opts);
  }
  throw new BackendConfigError(`unknown inference backend "${String(backend)}"; expected one of ${BACKEND_NAMES.join(', ')}`);
}

export interface WarmUpOptions {
  /** Runs to perform. Default: 2000 for WASM (its first ~2000 runs are several times slower), 20 for native. */
  runs?: number;
  /** Stop early once this much time has passed, so a warm-up can never stall start-up. Default 10 000 ms. */
  maxDurationMs?: number;
}

/**
 * Runs the session on representative feeds until the runtime has reached its steady speed. Call once
 * per session before it takes live calls. Returns the number of runs performed.
 */
export async function warmUp(session: ModelSession, feeds: TensorFeeds, options: WarmUpOptions = {}): Promise<number> {
  const runs = options.runs ?? (session.backend === 'wasm' ? 2000 : 20);
  const deadline = performance.now() + (options.maxDurationMs ?? 10_000);
  let done = 0;
  while (done < runs) {
    await session.run(feeds);
    done++;
    if (performance.now() >= deadline) break;
  }
  return done;
}

/** Shared bookkeeping for both adapters: the closed flag and error wrapping. */
export function guardSession(
  backend: BackendName,
  modelPath: string,
  inputNames: readonly string[],
  outputNames: readonly string[],
  runImpl: (feeds: TensorFeeds) => Promise<TensorFeeds>,
  releaseImpl: () => Promise<void>,
): ModelSession {
  let closed = false;
  return {
    backend,
    modelPath,
    inputNames,
    outputNames,
    async run(feeds) {
      if (closed) throw new ClosedError(`${backend} session for ${modelPath}`);
      try {
        return await runImpl(feeds);
      } catch (err) {
        if (closed) throw new ClosedError(`${backend} session for ${modelPath}`);
        throw new InferenceError(backend, modelPath, err);
      }
    },
    async release() {
      if (closed) return;
      closed = true;
      await releaseImpl();
    },
  };
}
