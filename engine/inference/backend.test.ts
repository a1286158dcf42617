import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModel } from '../../models/model-manager.ts';
import { BACKEND_NAMES, createModelSession, warmUp, type BackendName, type ModelSession, type TensorFeeds } from './backend.ts';

let sileroPath: string;
let tempDir: string;
beforeAll(async () => {
  sileroPath = await resolveModel('silero-vad-v6');
  tempDir = await mkdtemp(join(tmpdir(), 'backend-test-'));
});
afterAll(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

/** Deterministic pseudo-noise so both backends see identical, non-trivial input. */
function sileroFeeds(batch: number, seed: number): TensorFeeds {
  const input = new Float32Array(batch * 576);
  let x = seed >>> 0;
  for (let i = 0; i < input.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    input[i] = (x / 2 ** 32 - 0.5) * 0.6 * Math.sin(i / 7);
  }
  return {
    input: { type: 'float32', data: input, dims: [batch, 576] },
    state: { type: 'float32', data: new Float32Array(2 * batch * 128), dims: [2, batch, 128] },
    sr: { type: 'int64', data: BigInt64Array.from([16000n]), dims: [] },
  };
}

describe.each(BACKEND_NAMES)('%s backend', (backend: BackendName) => {
  let session: ModelSession;
  beforeAll(async () => {
    session = await createModelSession(backend, sileroPath, { threads: 1 });
  });
  afterAll(async () => {
    await session.release();
  });

  it('exposes the model input and output names', () => {
    expect(session.backend).toBe(backend);
    expect([...session.inputNames].sort()).toEqual(['input', 'sr', 'state']);
    expect([...session.outputNames].sort()).toEqual(['output', 'stateN']);
  });

  it('runs a batch and returns neutral tensors that later runs do not overwrite', async () => {
    const first = await session.run(sileroFeeds(3, 1));
    expect(first.output.type).toBe('float32');
    expect(first.output.dims).toEqual([3, 1]);
    expect(first.stateN.dims).toEqual([2, 3, 128]);
    const snapshot = Float32Array.from(first.output.data as Float32Array);
    await session.run(sileroFeeds(3, 99));
    expect(Array.from(first.output.data as Float32Array)).toEqual(Array.from(snapshot));
  });

  it('warms up for the requested number of runs', async () => {
    expect(await warmUp(session, sileroFeeds(1, 5), { runs: 7 })).toBe(7);
  });

  it('wraps a bad feed in VE_INFERENCE', async () => {
    const feeds = sileroFeeds(1, 1);
    await expect(session.run({ input: feeds.input, sr: feeds.sr })).rejects.toMatchObject({ code: 'VE_INFERENCE' });
  });

  it('rejects runs after release with VE_CLOSED, and release is idempotent', async () => {
    const s = await createModelSession(backend, sileroPath, { threads: 1 });
    await s.release();
    await s.release();
    await expect(s.run(sileroFeeds(1, 1))).rejects.toMatchObject({ code: 'VE_CLOSED' });
  });

  it('fails to load a file that is not a model with VE_MODEL_LOAD', async () => {
    const bogus = join(tempDir, `bogus-${backend}.onnx`);
    await writeFile(bogus, 'this is not an onnx model');
    await expect(createModelSession(backend, bogus, { threads: 1 })).rejects.toMatchObject({ code: 'VE_MODEL_LOAD' });
  });
});

describe('both backends', () => {
  it('agree on the same batched input', async () => {
    const wasm = await createModelSession('wasm', sileroPath, { threads: 1 });
    const native = await createModelSession('native', sileroPath, { threads: 1 });
    try {
      const feeds = sileroFeeds(4, 42);
      const a = await wasm.run(feeds);
      const b = await native.run(feeds);
      const pa = a.output.data as Float32Array;
      const pb = b.output.data as Float32Array;
      for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i] - pb[i])).toBeLessThan(1e-4);
      const sa = a.stateN.data as Float32Array;
      const sb = b.stateN.data as Float32Array;
      for (let i = 0; i < sa.length; i++) expect(Math.abs(sa[i] - sb[i])).toBeLessThan(1e-4);
    } finally {
      await wasm.release();
      await native.release();
    }
  });

  it('rejects a non-positive thread count and an unknown backend', async () => {
    await expect(createModelSession('native', sileroPath, { threads: 0 })).rejects.toMatchObject({ code: 'VE_BACKEND_CONFIG' });
    await expect(createModelSession('gpu' as BackendName, sileroPath, { threads: 1 })).rejects.toMatchObject({
      code: 'VE_BACKEND_CONFIG',
    });
  });
});

/** Runs a fresh worker thread that creates one session and reports which ORT packages it loaded. */
function packagesLoadedBy(backend: BackendName): Promise<string[]> {
  const backendUrl = new URL('./backend.ts', import.meta.url).href;
  const code = `
    const { registerHooks } = require('node:module');
    const { parentPort, workerData } = require('node:worker_threads');
    const seen = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const result = next(specifier, context);
        const m = /node_modules\\/(onnxruntime-[a-z]+)\\//.exec(result.url);
        if (m) seen.add(m[1]);
        return result;
      },
    });
    import(workerData.backendUrl)
      .then((m) => m.createModelSession(workerData.backend, workerData.modelPath, { threads: 1 }))
      .then((s) => s.release())
      .then(() => parentPort.postMessage([...seen]), (err) => parentPort.postMessage({ error: String(err) }));
  `;
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { backendUrl, backend, modelPath: sileroPath } });
    worker.once('message', (msg: string[] | { error: string }) => {
      void worker.terminate();
      if (Array.isArray(msg)) resolvePromise(msg.sort());
      else reject(new Error(msg.error));
    });
    worker.once('error', reject);
  });
}

describe('lazy loading', () => {
  it('a worker using only WASM never loads onnxruntime-node', async () => {
    const loaded = await packagesLoadedBy('wasm');
    expect(loaded).toContain('onnxruntime-web');
    expect(loaded).not.toContain('onnxruntime-node');
  });

  it('a worker using only native never loads onnxruntime-web', async () => {
    const loaded = await packagesLoadedBy('native');
    expect(loaded).toContain('onnxruntime-node');
    expect(loaded).not.toContain('onnxruntime-web');
  });
});
