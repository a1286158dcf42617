import type { CallStore } from '../store/call-store.ts';
import { StoreUnavailableError } from '../store/errors.ts';

/** The store operations a test can make fail. */
export type StoreMethod = Exclude<keyof CallStore, 'kind'>;

/**
 * Injects store outages per method, for the harness's `wrapStore`: `wrap` returns a store that throws
 * `StoreUnavailableError` (what a real outage produces) from the chosen methods and delegates the rest.
 */
export class StoreFaults {
  readonly #remaining = new Map<StoreMethod, number>();
  readonly #matches = new Map<StoreMethod, (args: unknown[]) => boolean>();
  /** Calls that were refused, per method, so a test can show the fault was reached. */
  readonly refused = new Map<StoreMethod, number>();

  /** The next `times` calls of `method` (only those whose arguments `match`, when given) fail. */
  failNext(method: StoreMethod, times = 1, match?: (args: unknown[]) => boolean): void {
    this.#remaining.set(method, times);
    if (match === undefined) this.#matches.delete(method);
    else this.#matches.set(method, match);
  }

  /** Every call of `method` fails until `restore`. */
  fail(method: StoreMethod): void {
    this.#remaining.set(method, Number.POSITIVE_INFINITY);
  }

  restore(method?: StoreMethod): void {
    if (method === undefined) {
      this.#remaining.clear();
      this.#matches.clear();
    } else {
      this.#remaining.delete(method);
      this.#matches.delete(method);
    }
  }

  wrap(store: CallStore): CallStore {
    return new Proxy(store, {
      get: (target, prop) => {
        // The target as receiver: the stores keep their state in private fields.
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const method = prop as StoreMethod;
        return (...args: unknown[]) => {
          const left = this.#remaining.get(method) ?? 0;
          if (left > 0 && (this.#matches.get(method)?.(args) ?? true)) {
            if (left === 1) this.#remaining.delete(method);
            else this.#remaining.set(method, left - 1);
            this.refused.set(method, (this.refused.get(method) ?? 0) + 1);
            return Promise.reject(new StoreUnavailableError(`injected outage: ${method}`));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
}
