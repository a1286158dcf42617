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
    async (feeds) => fromOrt(await session.run(toOrt(feeds))),
    () => session.release(),
  );
}

function toOrt(feeds: TensorFeeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const name in feeds) {
    const t = feeds[name];
    out[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  return out;
}

function fromOrt(results: ort.InferenceSession.OnnxValueMapType): TensorFeeds {
  const out: TensorFeeds = {};
  for (const name in results) {
    out[name] = neutral(results[name] as ort.Tensor);
  }
  return out;
}

function neutral(t: ort.Tensor): NeutralTensor {
  const dims = Array.from(t.dims);
  if (t.type === 'float32') return { type: 'float32', data: t.data as Float32Array, dims };
  if (t.type === 'int64') return { type: 'int64', data: t.data as BigInt64Array, dims };
  throw new Error(`output tensor type ${t.type} is not supported by the neutral tensor type`);
}
