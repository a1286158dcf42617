/** onnxruntime-node adapter (native CPU). Imported only through `createModelSession('native', ...)`. */
import * as ort from 'onnxruntime-node';
import { ModelLoadError, guardSession, type ModelSession, type NeutralTensor, type SessionOptions, type TensorFeeds } from './backend.ts';

export async function createNodeSession(modelPath: string, opts: SessionOptions): Promise<ModelSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: opts.threads,
      interOpNumThreads: opts.threads,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new ModelLoadError('native', modelPath, err);
  }
  return guardSession(
    'native',
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
    const t = results[name] as ort.Tensor;
    out[name] = neutral(t);
  }
  return out;
}

function neutral(t: ort.Tensor): NeutralTensor {
  const dims = Array.from(t.dims);
  if (t.type === 'float32') return { type: 'float32', data: t.data as Float32Array, dims };
  if (t.type === 'int64') return { type: 'int64', data: t.data as BigInt64Array, dims };
  throw new Error(`output tensor type ${t.type} is not supported by the neutral tensor type`);
}
