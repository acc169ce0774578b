import { VaultError } from '../errors.ts';
import type { WindowCounters } from './counters.ts';

/** One clock minute: the card-fields limits count per minute. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/**
 * A limit of requests per key (client IP, publishable key) in fixed windows
 * aligned to the clock. Counted wherever its counters are: shared by every
 * vault process on PostgreSQL, in memory on PGlite.
 */
export class RateLimiter {
  readonly #counters: WindowCounters;
  readonly #limit: number;

  constructor(counters: WindowCounters, limitPerWindow: number) {
    this.#counters = counters;
    this.#limit = limitPerWindow;
  }

  /** Counts one request for `key`, throwing 429 with `Retry-After` (the rest of the window) once the limit is passed. */
  async hit(key: string): Promise<void> {
    const { hits, msLeft } = await this.#counters.add(key);
    if (hits > this.#limit) throw new VaultError('rate_limited', { retryAfterSeconds: Math.max(1, Math.ceil(msLeft / 1000)) });
  }
}
