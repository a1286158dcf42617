/**
 * Percentiles over a sliding window of recent measurements, in buckets of one sampling period: `rotate()`
 * starts a new bucket and drops the oldest, so the window moves with the sampler's timer and no sample
 * needs a timestamp. Each bucket keeps a uniform random sample of at most `bucketCapacity` values
 * (reservoir sampling), so a percentile costs the same at 50 calls (about 1 500 VAD windows a second)
 * as at 5 and memory stays bounded.
 */
export interface WindowedSamplesOptions {
  /** Buckets in the window (the window is this many sampling periods). */
  buckets: number;
  /** Values kept per bucket; more are sampled down uniformly. Default 2048. */
  bucketCapacity?: number;
  /** Uniform [0, 1); tests pass a seeded one. Default Math.random. */
  random?: () => number;
}

interface Bucket {
  values: number[];
  /** Values offered to this bucket, kept or not. */
  seen: number;
}

export class WindowedSamples {
  readonly bucketCount: number;
  readonly bucketCapacity: number;
  #random: () => number;
  #buckets: Bucket[];

  constructor(options: WindowedSamplesOptions) {
    if (!Number.isInteger(options.buckets) || options.buckets < 1) throw new RangeError('buckets must be a positive integer');
    this.bucketCount = options.buckets;
    this.bucketCapacity = options.bucketCapacity ?? 2048;
    this.#random = options.random ?? Math.random;
    this.#buckets = [{ values: [], seen: 0 }];
  }

  record(value: number): void {
    if (!Number.isFinite(value)) return;
    const bucket = this.#buckets[this.#buckets.length - 1];
    bucket.seen++;
    if (bucket.values.length < this.bucketCapacity) {
      bucket.values.push(value);
      return;
    }
    const slot = Math.floor(this.#random() * bucket.seen);
    if (slot < this.bucketCapacity) bucket.values[slot] = value;
  }

  /** Starts a new bucket; the oldest leaves the window once there are more than `buckets`. */
  rotate(): void {
    this.#buckets.push({ values: [], seen: 0 });
    if (this.#buckets.length > this.bucketCount) this.#buckets.shift();
  }

  /** Values recorded in the window (kept or sampled away). */
  get count(): number {
    return this.#buckets.reduce((sum, b) => sum + b.seen, 0);
  }

  /**
   * Nearest-rank percentile (0-100) over the window, NaN when empty. Buckets that were sampled down
   * stand for more values than they keep, so each kept value is weighted by seen / kept.
   */
  percentile(p: number): number {
    const weighted: Array<[value: number, weight: number]> = [];
    let total = 0;
    for (const bucket of this.#buckets) {
      if (bucket.values.length === 0) continue;
      const weight = bucket.seen / bucket.values.length;
      for (const value of bucket.values) weighted.push([value, weight]);
      total += bucket.seen;
    }
    if (total === 0) return Number.NaN;
    weighted.sort((a, b) => a[0] - b[0]);
    const rank = Math.max(Math.ceil((p / 100) * total), 1);
    let cumulative = 0;
    for (const [value, weight] of weighted) {
      cumulative += weight;
      if (cumulative >= rank - 1e-9) return value;
    }
    return weighted[weighted.length - 1][0];
  }

  clear(): void {
    this.#buckets = [{ values: [], seen: 0 }];
  }
}
