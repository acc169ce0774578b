import { VaultError } from '../errors.ts';

/**
 * Fixed one-minute windows counted in memory, per key (client IP,
 * publishable key). Each vault process counts on its own; behind several
 * processes the effective limit is the sum.
 */
export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(limitPerWindow: number, windowMs = 60_000) {
    this.#limit = limitPerWindow;
    this.#windowMs = windowMs;
  }

  /** Counts one request for `key`, throwing 429 with `Retry-After` once the window's limit is reached. */
  hit(key: string, now = Date.now()): void {
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now - (now % this.#windowMs);
      this.#counts = new Map();
    }
    const count = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, count);
    if (count > this.#limit) {
      const retryAfter = Math.max(1, Math.ceil((this.#windowStart + this.#windowMs - now) / 1000));
      throw new VaultError('rate_limited', { retryAfterSeconds: retryAfter });
    }
  }
}
