import type { NextFunction, Request, Response } from 'express';

/**
 * How long background work that steps aside waits for the requests in flight
 * by default before it goes anyway: long enough for a tokenization to be
 * answered, short enough that the work (and its backlog) keeps moving when
 * the vault is never idle.
 */
export const YIELD_TO_REQUESTS_MS = 50;

/**
 * Counts the API requests this process is answering, so background work that
 * can wait (a token batch) steps aside while there are some: a shopper's
 * tokenization must not queue behind a bulk migration.
 */
export class RequestsInFlight {
  #count = 0;
  #arrived = 0;
  #waiters: (() => void)[] = [];
  /** The responses whose requests are counted now. */
  readonly #counted = new WeakSet<Response>();

  readonly middleware = (_req: Request, res: Response, next: NextFunction): void => {
    this.#count++;
    this.#arrived++;
    this.#counted.add(res);
    res.once('close', () => this.#release(res));
    next();
  };

  /**
   * The request of `res` stops counting until it is answered: it waits on
   * background work itself (a sync network-token request waits for
   * provisioning's statements, which wait for the requests in flight), so
   * counting it would have that work wait for the very request waiting on it.
   */
  aside(res: Response): void {
    this.#release(res);
  }

  #release(res: Response): void {
    if (!this.#counted.delete(res)) return;
    this.#count--;
    if (this.#count === 0) for (const wake of this.#waiters.splice(0)) wake();
  }

  get busy(): boolean {
    return this.#count > 0;
  }

  /** API requests this process has received since it started: compared before and after a step of background work, whether any came meanwhile. */
  get arrived(): number {
    return this.#arrived;
  }

  /** API requests this process is answering now. */
  get count(): number {
    return this.#count;
  }

  /** Resolves once no request is in flight, or after `maxWaitMs` at most (background work must still move). */
  whenIdle(maxWaitMs: number = YIELD_TO_REQUESTS_MS): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, maxWaitMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#waiters.push(done);
    });
  }
}
