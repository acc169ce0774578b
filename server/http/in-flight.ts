import type { NextFunction, Request, Response } from 'express';

/**
 * Counts the API requests this process is answering, so background work that
 * can wait (a token batch) steps aside while there are some: a shopper's
 * tokenization must not queue behind a bulk migration.
 */
export class RequestsInFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  readonly middleware = (_req: Request, res: Response, next: NextFunction): void => {
    this.#count++;
    res.once('close', () => {
      this.#count--;
      if (this.#count === 0) for (const wake of this.#waiters.splice(0)) wake();
    });
    next();
  };

  get busy(): boolean {
    return this.#count > 0;
  }

  /** Resolves once no request is in flight, or after `maxWaitMs` at most (background work must still move). */
  whenIdle(maxWaitMs: number): Promise<void> {
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
