/**
 * Runs Smart Turn v3 on log-mel feature blocks (from `smart-turn-features.ts`). All blocks handed to one
 * `predict` go through the model in a single batched run: the batch dimension is dynamic and a turn
 * check is expensive (tens of ms native, about 150 ms WASM), so several calls finishing a turn at the
 * same moment share one run.
 */
import { VoiceError } from '../errors.ts';
import type { ModelSession } from '../inference/backend.ts';

export const SMART_TURN_INPUT_MEL_BINS = 80;
export const SMART_TURN_INPUT_FRAMES = 800;
/** Floats in one feature block, [80 mel bins][800 frames]. */
export const SMART_TURN_BLOCK_LENGTH = SMART_TURN_INPUT_MEL_BINS * SMART_TURN_INPUT_FRAMES;
/** The model's output is already a sigmoid probability; above this the turn is complete. */
export const SMART_TURN_COMPLETE_THRESHOLD = 0.5;

const INPUT_NAME = 'input_features';
const OUTPUT_NAME = 'logits';

export class SmartTurnInputError extends VoiceError {
  constructor(message: string) {
    super('VE_SMART_TURN_INPUT', message, { status: 400 });
    this.name = 'SmartTurnInputError';
  }
}

export class SmartTurnModel {
  readonly #session: ModelSession;
  #batch = new Float32Array(0);
  #capacity = 0;
  /** Runs are serialised: they share the batch buffer. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(session: ModelSession) {
    this.#session = session;
  }

  /** Wraps a session of the Smart Turn v3 model; throws `SmartTurnInputError` if its I/O differs. */
  static create(session: ModelSession): SmartTurnModel {
    if (!session.inputNames.includes(INPUT_NAME) || !session.outputNames.includes(OUTPUT_NAME)) {
      throw new SmartTurnInputError(
        `${session.modelPath} is not a Smart Turn v3 model: inputs [${session.inputNames.join(', ')}], outputs [${session.outputNames.join(', ')}]`,
      );
    }
    return new SmartTurnModel(session);
  }

  /**
   * Probability that each turn is complete, in the order given. Each block is SMART_TURN_BLOCK_LENGTH
   * floats; all of them go through one model run. Concurrent calls are queued.
   */
  predict(features: Float32Array[]): Promise<number[]> {
    for (let i = 0; i < features.length; i++) {
      if (features[i].length !== SMART_TURN_BLOCK_LENGTH) {
        return Promise.reject(
          new SmartTurnInputError(`feature block ${i} has ${features[i].length} floats, expected ${SMART_TURN_BLOCK_LENGTH} (80 x 800)`),
        );
      }
    }
    if (features.length === 0) return Promise.resolve([]);
    const blocks = features.slice();
    const result = this.#tail.then(() => this.#run(blocks));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  async #run(blocks: Float32Array[]): Promise<number[]> {
    const batch = blocks.length;
    let data: Float32Array;
    if (batch === 1) {
      // One block needs no gathering: hand it over as is.
      data = blocks[0];
    } else {
      this.#ensureCapacity(batch);
      for (let b = 0; b < batch; b++) this.#batch.set(blocks[b], b * SMART_TURN_BLOCK_LENGTH);
      data = this.#batch.subarray(0, batch * SMART_TURN_BLOCK_LENGTH);
    }
    const out = await this.#session.run({
      [INPUT_NAME]: { type: 'float32', data, dims: [batch, SMART_TURN_INPUT_MEL_BINS, SMART_TURN_INPUT_FRAMES] },
    });
    const probabilities = out[OUTPUT_NAME].data as Float32Array;
    return Array.from(probabilities.subarray(0, batch));
  }

  #ensureCapacity(batch: number): void {
    if (batch <= this.#capacity) return;
    let capacity = Math.max(4, this.#capacity);
    while (capacity < batch) capacity *= 2;
    this.#batch = new Float32Array(capacity * SMART_TURN_BLOCK_LENGTH);
    this.#capacity = capacity;
  }
}
