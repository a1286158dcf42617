/** onnxruntime-node adapter (native CPU). Imported only through `createModelSession('native', ...)`. */
import * as ort from 'onnxruntime-node';
import { ModelLoadError, guardSession, type ModelSession, type SessionOptions } from './backend.ts';
import { fromOrt, toOrt } from './ort-tensors.ts';

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
    async (feeds) => fromOrt(await session.run(toOrt(feeds, (t) => new ort.Tensor(t.type, t.data, t.dims)))),
    () => session.release(),
  );
}
