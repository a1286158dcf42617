/**
 * onnxruntime-web adapter (WebAssembly SIMD). Imported only through `createModelSession('wasm', ...)`.
 * Runs inside any worker thread without a native addon; slower than native and slow to warm up.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-web';
import {
  BackendConfigError,
  ModelLoadError,
  guardSession,
  type ModelSession,
  type NeutralTensor,
  type SessionOptions,
  type TensorFeeds,
} from './backend.ts';
import { fromOrt, toOrt } from './ort-tensors.ts';

/**
 * onnxruntime-web initialises its WebAssembly runtime once per thread with the thread count in
 * `env.wasm.numThreads` (left alone, Node gets min(4, cpus/2)); later changes are ignored. We set it
 * explicitly at first use and refuse a different count afterwards rather than silently ignoring it.
 */
let wasmThreads: number | undefined;

export async function createWebSession(modelPath: string, opts: SessionOptions): Promise<ModelSession> {
  if (wasmThreads === undefined) {
    wasmThreads = opts.threads;
    ort.env.wasm.numThreads = opts.threads;
  } else if (wasmThreads !== opts.threads) {
    throw new BackendConfigError(
      `the WASM runtime in this thread already runs with ${wasmThreads} thread(s); cannot create a session with ${opts.threads}`,
    );
  }
  let session: ort.InferenceSession;
  try {
    // From bytes: the Node build of onnxruntime-web does not read files from paths in every version.
    const bytes = await readFile(modelPath);
    session = await ort.InferenceSession.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new ModelLoadError('wasm', modelPath, err);
  }
  return guardSession(
    'wasm',
    modelPath,
    session.inputNames,
    session.outputNames,
    async (feeds) => fromOrt(await session.run(toOrt(feeds, (t) => new ort.Tensor(t.type, t.data, t.dims)))),
    () => session.release(),
  );
}
