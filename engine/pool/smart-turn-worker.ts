/**
 * Turn-pool worker: runs Smart Turn v3 on batches of feature blocks. One inference session per thread,
 * created on the first task. Batches are formed on the main thread by SmartTurnPool.
 */
import { createModelSession, type BackendName, type ModelSession } from '../inference/backend.ts';
import { SmartTurnModel } from '../stages/smart-turn-model.ts';
import { SMART_TURN_MEL_BINS, SMART_TURN_FRAMES } from '../stages/smart-turn-features.ts';

export interface SmartTurnTask {
  modelPath: string;
  backend: BackendName;
  threads: number;
  /** Feature blocks, each [80][800] float32. An empty list only warms the session up. */
  features: Float32Array[];
  warmUpRuns?: number;
  /** Test hook: hold the thread this long before the run (a slow, contended box). */
  delayMs?: number;
}

export interface SmartTurnTaskResult {
  probabilities: number[];
  inferenceMs: number;
}

let model: Promise<{ model: SmartTurnModel; session: ModelSession }> | null = null;

function load(task: SmartTurnTask) {
  model ??= createModelSession(task.backend, task.modelPath, { threads: task.threads }).then((session) => ({ session, model: SmartTurnModel.create(session) }));
  return model;
}

export default async function predict(task: SmartTurnTask): Promise<SmartTurnTaskResult> {
  const { model: turnModel } = await load(task);
  for (let i = 0; i < (task.warmUpRuns ?? 0); i++) {
    await turnModel.predict([new Float32Array(SMART_TURN_MEL_BINS * SMART_TURN_FRAMES)]);
  }
  if (task.features.length === 0) return { probabilities: [], inferenceMs: 0 };
  if (task.delayMs !== undefined && task.delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, task.delayMs);
  const started = performance.now();
  const probabilities = await turnModel.predict(task.features);
  return { probabilities, inferenceMs: performance.now() - started };
}
