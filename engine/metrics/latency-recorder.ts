/**
 * Keeps the most recent latency samples in a fixed ring and answers percentiles over them. Bounded
 * memory whatever the call volume; counts every sample ever recorded.
 */
export class LatencyRecorder {
  readonly capacity: number;
  #samples: Float64Array;
  #count = 0;

  constructor(capacity = 65_536) {
    this.capacity = capacity;
    this.#samples = new Float64Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  record(valueMs: number): void {
    this.#samples[this.#count % this.capacity] = valueMs;
    this.#count++;
  }

  /** Nearest-rank percentile (0-100) over the retained samples; NaN when empty. */
  percentile(p: number): number {
    const n = Math.min(this.#count, this.capacity);
    if (n === 0) return Number.NaN;
    const sorted = this.#samples.slice(0, n).sort();
    const rank = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
    return sorted[rank];
  }

  summary(): { count: number; p50: number; p95: number; p99: number; max: number } {
    return { count: this.#count, p50: this.percentile(50), p95: this.percentile(95), p99: this.percentile(99), max: this.percentile(100) };
  }

  reset(): void {
    this.#count = 0;
  }
}
