/**
 * The last `capacitySamples` samples of a call's 16 kHz audio, as float32 in [-1, 1].
 * Smart Turn reads the current turn's audio from here when the VAD reports a stop.
 */
export class AudioHistory {
  readonly capacitySamples: number;
  #data: Float32Array;
  #totalSamples = 0;

  constructor(capacitySamples: number) {
    this.capacitySamples = capacitySamples;
    this.#data = new Float32Array(capacitySamples);
  }

  /** Samples appended since the call started (a 16 kHz stream offset). */
  get totalSamples(): number {
    return this.#totalSamples;
  }

  append(samples: Float32Array): void {
    const capacity = this.capacitySamples;
    let source = samples;
    if (source.length > capacity) {
      this.#totalSamples += source.length - capacity;
      source = source.subarray(source.length - capacity);
    }
    const start = this.#totalSamples % capacity;
    const firstPart = Math.min(source.length, capacity - start);
    this.#data.set(source.subarray(0, firstPart), start);
    if (firstPart < source.length) this.#data.set(source.subarray(firstPart), 0);
    this.#totalSamples += source.length;
  }

  /** A copy of the most recent `count` samples (fewer when the call is younger than that). */
  latest(count: number): Float32Array {
    const available = Math.min(count, this.capacitySamples, this.#totalSamples);
    const out = new Float32Array(available);
    const capacity = this.capacitySamples;
    const begin = (this.#totalSamples - available) % capacity;
    const firstPart = Math.min(available, capacity - begin);
    out.set(this.#data.subarray(begin, begin + firstPart), 0);
    if (firstPart < available) out.set(this.#data.subarray(0, available - firstPart), firstPart);
    return out;
  }

  /**
   * A copy of the stream's samples `[startSamples, endSamples)`, less whatever is no longer (or not yet)
   * held: the copy starts at max(startSamples, oldest held) and ends at min(endSamples, totalSamples).
   */
  range(startSamples: number, endSamples: number): Float32Array {
    return this.copyRange(startSamples, endSamples, new Float32Array(Math.max(0, endSamples - startSamples)));
  }

  /** `range` into a caller-owned array (at least `endSamples - startSamples` long); returns the filled prefix. */
  copyRange(startSamples: number, endSamples: number, out: Float32Array): Float32Array {
    const oldest = this.#totalSamples - Math.min(this.capacitySamples, this.#totalSamples);
    const from = Math.max(startSamples, oldest);
    const to = Math.min(endSamples, this.#totalSamples);
    if (to <= from) return out.subarray(0, 0);
    const capacity = this.capacitySamples;
    const begin = from % capacity;
    const count = to - from;
    const firstPart = Math.min(count, capacity - begin);
    out.set(this.#data.subarray(begin, begin + firstPart), 0);
    if (firstPart < count) out.set(this.#data.subarray(0, count - firstPart), firstPart);
    return out.subarray(0, count);
  }

  /** State for moving a call to another worker. */
  snapshot(): { latest: Float32Array; totalSamples: number } {
    return { latest: this.latest(this.capacitySamples), totalSamples: this.#totalSamples };
  }

  static restore(capacitySamples: number, snapshot: { latest: Float32Array; totalSamples: number }): AudioHistory {
    const history = new AudioHistory(capacitySamples);
    // Start the ring at the offset the snapshot's first sample had, so positions stay aligned.
    history.#totalSamples = snapshot.totalSamples - snapshot.latest.length;
    history.append(snapshot.latest);
    return history;
  }
}
