/**
 * Silero VAD v5/v6 for many streams on one session: one `session.run` per step covers every stream
 * that has a window ready. The model is stateful per stream (an LSTM state of [2, 128] and the last 64
 * samples of the previous window as context); we keep both per stream, gather them into batch rows,
 * and scatter the new state back. Row b of a batched run equals an independent B=1 run of that stream.
 */
import { VoiceError } from '../errors.ts';
import type { ModelSession, TensorFeeds } from '../inference/backend.ts';

/** New 16 kHz samples per window. */
export const VAD_WINDOW_SAMPLES = 512;
/** Samples carried over from the previous window and prepended to the next. */
export const VAD_CONTEXT_SAMPLES = 64;
export const VAD_SAMPLE_RATE = 16000;
/** Duration of one window: 32 ms. */
export const VAD_WINDOW_MS = (VAD_WINDOW_SAMPLES * 1000) / VAD_SAMPLE_RATE;

const ROW_SAMPLES = VAD_CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES;
const STATE_UNITS = 128;
const STATE_LAYERS = 2;
/** Per-stream state: [2, 128] slices of the model's [2, B, 128] state. */
const STREAM_STATE_SIZE = STATE_LAYERS * STATE_UNITS;

const REQUIRED_INPUTS = ['input', 'state', 'sr'];
const REQUIRED_OUTPUTS = ['output', 'stateN'];

/** A window of the wrong size, an unknown stream, or a model with other inputs. */
export class VadInputError extends VoiceError {
  constructor(message: string) {
    super('VE_VAD_INPUT', message, { status: 400 });
    this.name = 'VadInputError';
  }
}

/** Per-stream model state, portable between workers. */
export interface VadStreamState {
  /** The last VAD_CONTEXT_SAMPLES samples seen. */
  context: Float32Array;
  /** LSTM state, [2, 128] row-major. */
  state: Float32Array;
}

interface StreamSlot {
  context: Float32Array;
  state: Float32Array;
  /** Bumped by reset/import so a step already in flight does not overwrite the fresh state. */
  generation: number;
}

interface StepTarget {
  id: string;
  window: Float32Array;
  slot: StreamSlot;
  generation: number;
}

export class SileroVad {
  readonly #session: ModelSession;
  readonly #streams = new Map<string, StreamSlot>();
  readonly #sr: BigInt64Array = BigInt64Array.from([BigInt(VAD_SAMPLE_RATE)]);
  #input = new Float32Array(0);
  #state = new Float32Array(0);
  #capacity = 0;
  /** Steps are serialised: they share the batch buffers. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(session: ModelSession) {
    this.#session = session;
  }

  /** Wraps a session of a Silero v5/v6 model; throws `VadInputError` if its inputs/outputs differ. */
  static create(session: ModelSession): SileroVad {
    const missingIn = REQUIRED_INPUTS.filter((n) => !session.inputNames.includes(n));
    const missingOut = REQUIRED_OUTPUTS.filter((n) => !session.outputNames.includes(n));
    if (missingIn.length > 0 || missingOut.length > 0) {
      throw new VadInputError(
        `${session.modelPath} is not a Silero v5/v6 model: inputs [${session.inputNames.join(', ')}], outputs [${session.outputNames.join(', ')}]`,
      );
    }
    return new SileroVad(session);
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  addStream(streamId: string): void {
    if (this.#streams.has(streamId)) throw new VadInputError(`VAD stream ${streamId} already exists`);
    this.#streams.set(streamId, newSlot());
  }

  /** Idempotent. A step in flight simply drops this stream's result. */
  removeStream(streamId: string): void {
    this.#streams.delete(streamId);
  }

  hasStream(streamId: string): boolean {
    return this.#streams.has(streamId);
  }

  /** Forgets the audio history of a stream, as if it had just been added. */
  resetStream(streamId: string): void {
    const slot = this.#slot(streamId);
    slot.context.fill(0);
    slot.state.fill(0);
    slot.generation++;
  }

  /** A copy of the stream's state, for moving a call to another worker. */
  exportStreamState(streamId: string): VadStreamState {
    const slot = this.#slot(streamId);
    return { context: slot.context.slice(), state: slot.state.slice() };
  }

  /** Restores a state from `exportStreamState`; adds the stream if it does not exist yet. */
  importStreamState(streamId: string, s: VadStreamState): void {
    if (s.context.length !== VAD_CONTEXT_SAMPLES || s.state.length !== STREAM_STATE_SIZE) {
      throw new VadInputError(
        `VAD state for ${streamId} must have ${VAD_CONTEXT_SAMPLES} context samples and ${STREAM_STATE_SIZE} state values, got ${s.context.length} and ${s.state.length}`,
      );
    }
    let slot = this.#streams.get(streamId);
    if (slot === undefined) {
      slot = newSlot();
      this.#streams.set(streamId, slot);
    }
    slot.context.set(s.context);
    slot.state.set(s.state);
    slot.generation++;
  }

  /**
   * One step: `windows` maps stream ids to VAD_WINDOW_SAMPLES float32 samples in [-1, 1] at 16 kHz.
   * Returns the speech probability per id, all from one model run. Concurrent calls are queued; the
   * windows are read when the step starts, so leave them unchanged until the promise settles. A stream
   * removed, reset or re-imported after this call but before its step starts is left out of the result.
   */
  run(windows: Map<string, Float32Array>): Promise<Map<string, number>> {
    for (const [id, window] of windows) {
      if (!this.#streams.has(id)) return Promise.reject(new VadInputError(`unknown VAD stream ${id}`));
      if (window.length !== VAD_WINDOW_SAMPLES) {
        return Promise.reject(
          new VadInputError(`VAD window for ${id} has ${window.length} samples, expected ${VAD_WINDOW_SAMPLES}`),
        );
      }
    }
    // Snapshot which stream state each window belongs to now, in call order: a reset, import or removal
    // made after this call must win over this step's result.
    const targets: StepTarget[] = [];
    for (const [id, window] of windows) {
      const slot = this.#streams.get(id) as StreamSlot;
      targets.push({ id, window, slot, generation: slot.generation });
    }
    const result = this.#tail.then(() => this.#step(targets));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  async #step(requested: StepTarget[]): Promise<Map<string, number>> {
    const probabilities = new Map<string, number>();
    // Streams removed, reset or re-imported while this step waited in the queue are left out.
    const targets = requested.filter((t) => this.#isCurrent(t));
    const batch = targets.length;
    if (batch === 0) return probabilities;
    this.#ensureCapacity(batch);

    const input = this.#input;
    const state = this.#state;
    for (let b = 0; b < batch; b++) {
      const { slot, window } = targets[b];
      const row = b * ROW_SAMPLES;
      input.set(slot.context, row);
      input.set(window, row + VAD_CONTEXT_SAMPLES);
      for (let layer = 0; layer < STATE_LAYERS; layer++) {
        state.set(
          slot.state.subarray(layer * STATE_UNITS, (layer + 1) * STATE_UNITS),
          (layer * batch + b) * STATE_UNITS,
        );
      }
    }

    const feeds: TensorFeeds = {
      // Views, not copies: ORT requires the data length to equal the shape's size.
      input: { type: 'float32', data: input.subarray(0, batch * ROW_SAMPLES), dims: [batch, ROW_SAMPLES] },
      state: { type: 'float32', data: state.subarray(0, STATE_LAYERS * batch * STATE_UNITS), dims: [STATE_LAYERS, batch, STATE_UNITS] },
      sr: { type: 'int64', data: this.#sr, dims: [] },
    };
    const out = await this.#session.run(feeds);
    const output = out.output.data as Float32Array;
    const stateN = out.stateN.data as Float32Array;

    for (let b = 0; b < batch; b++) {
      const target = targets[b];
      const slot = target.slot;
      probabilities.set(target.id, output[b]);
      // Reset, re-imported or removed (and maybe re-added) during the run: keep the newer state.
      if (!this.#isCurrent(target)) continue;
      const row = b * ROW_SAMPLES;
      slot.context.set(input.subarray(row + ROW_SAMPLES - VAD_CONTEXT_SAMPLES, row + ROW_SAMPLES));
      for (let layer = 0; layer < STATE_LAYERS; layer++) {
        const from = (layer * batch + b) * STATE_UNITS;
        slot.state.set(stateN.subarray(from, from + STATE_UNITS), layer * STATE_UNITS);
      }
    }
    return probabilities;
  }

  #isCurrent(target: StepTarget): boolean {
    return this.#streams.get(target.id) === target.slot && target.slot.generation === target.generation;
  }

  #ensureCapacity(batch: number): void {
    if (batch <= this.#capacity) return;
    // Grow geometrically so a worker whose stream count creeps up reallocates only a few times.
    let capacity = Math.max(8, this.#capacity);
    while (capacity < batch) capacity *= 2;
    this.#input = new Float32Array(capacity * ROW_SAMPLES);
    this.#state = new Float32Array(STATE_LAYERS * capacity * STATE_UNITS);
    this.#capacity = capacity;
  }

  #slot(streamId: string): StreamSlot {
    const slot = this.#streams.get(streamId);
    if (slot === undefined) throw new VadInputError(`unknown VAD stream ${streamId}`);
    return slot;
  }
}

function newSlot(): StreamSlot {
  return { context: new Float32Array(VAD_CONTEXT_SAMPLES), state: new Float32Array(STREAM_STATE_SIZE), generation: 0 };
}
