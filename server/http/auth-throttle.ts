import type { NextFunction, Request, Response } from 'express';
import { auditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { clientIp, clientNetwork } from './client-ip.ts';

/** What becomes of one failed authentication's audit entry. */
export type FailureVerdict = 'record' | 'record-throttled' | 'drop';

interface NetworkWindow {
  /** When this network's first failure of the window came. */
  start: number;
  failures: number;
  /** The window's one `auth.throttled` entry has been handed out. */
  throttleRecorded: boolean;
}

/**
 * Failed authentication (an unknown, malformed or misplaced key), counted per
 * client network in one-minute windows that start at the network's first
 * failure. Past the limit the network is refused (429 `rate_limited`) before
 * any key is looked up, until its window ends, and its attempts are no longer
 * written one by one: a network writes at most `limit` `auth.failed` entries
 * and one `auth.throttled` entry per window, however hard or concurrently it
 * tries. Counted per process, like the other rate limits.
 */
export class AuthFailureThrottle {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #networks = new Map<string, NetworkWindow>();
  #lastSweep = 0;

  constructor(limitPerWindow: number, windowMs = 60_000) {
    this.#limit = limitPerWindow;
    this.#windowMs = windowMs;
  }

  /** Middleware before every authenticated route: a network over its limit is answered 429 at once. */
  readonly guard = (req: Request, _res: Response, next: NextFunction): void => {
    const now = Date.now();
    const network = this.#current(clientNetwork(clientIp(req)), now);
    if (network === undefined || network.failures < this.#limit) {
      next();
      return;
    }
    if (!network.throttleRecorded) {
      network.throttleRecorded = true;
      // The error handler writes it, like any failure a route names.
      req.audit = { merchantId: null, actor: req.actor ?? 'unknown', action: 'auth.throttled', ...auditSource(req) };
    }
    const secondsLeft = Math.max(1, Math.ceil((network.start + this.#windowMs - now) / 1000));
    throw new VaultError('rate_limited', {
      message: 'Too many failed authentication attempts from this address; retry later.',
      retryAfterSeconds: secondsLeft,
    });
  };

  /**
   * Counts a failed authentication. Within the limit its entry is recorded;
   * past it (requests that were already in flight when the limit was reached)
   * only the window's first is, as the network's `auth.throttled` entry.
   */
  failed(req: Request): FailureVerdict {
    const now = Date.now();
    const key = clientNetwork(clientIp(req));
    let network = this.#current(key, now);
    if (network === undefined) {
      network = { start: now, failures: 0, throttleRecorded: false };
      this.#networks.set(key, network);
    }
    network.failures++;
    if (network.failures <= this.#limit) return 'record';
    if (network.throttleRecorded) return 'drop';
    network.throttleRecorded = true;
    return 'record-throttled';
  }

  /** The network's window if it is still running; ended windows are forgotten (all of them, once a window). */
  #current(key: string, now: number): NetworkWindow | undefined {
    if (now - this.#lastSweep >= this.#windowMs) {
      this.#lastSweep = now;
      for (const [name, window] of this.#networks) if (now - window.start >= this.#windowMs) this.#networks.delete(name);
    }
    const network = this.#networks.get(key);
    if (network === undefined || now - network.start < this.#windowMs) return network;
    this.#networks.delete(key);
    return undefined;
  }
}
