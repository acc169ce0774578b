import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { auditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import type { Db } from '../storage/db.ts';
import { clientIp, clientNetwork } from './client-ip.ts';
import type { WindowCounters } from './counters.ts';

/** What becomes of one failed authentication's audit entry. */
export type FailureVerdict = 'record' | 'record-throttled' | 'drop';

/** A network's failures count for a minute from its first. */
export const AUTH_FAILURE_WINDOW_MS = 60_000;

/** Where a process that sees a network reach its limit tells the others. */
const SUSPECTS_CHANNEL = 'tessera_auth_throttled';
const Announcement = z.object({ network: z.string().max(64), ms_left: z.number().nonnegative().max(3_600_000) });

/**
 * Failed authentication (an unknown, malformed or misplaced key), counted per
 * client network in one-minute windows that start at the network's first
 * failure. Past the limit the network is refused (429 `rate_limited`) before
 * any key is looked up, until its window ends, and its attempts are no longer
 * written one by one: a network writes at most `limit` `auth.failed` entries
 * and one `auth.throttled` entry per window, however hard or concurrently it
 * tries — across every vault process when the counters are shared: the
 * failures, the refused attempts past the limit and the one throttled entry
 * are all counts of one counter.
 *
 * Requests from a network with no failure here are let through without
 * asking the counters, so a shared store costs nothing on a clean request: a
 * network becomes a suspect when it fails here, or when another process
 * announces (NOTIFY) that it reached the limit. Should an announcement be
 * lost, the network's next request here fails authentication, is counted
 * past the limit and makes it a suspect: one more 401 per process, no entry.
 */
export class AuthFailureThrottle {
  readonly #counters: WindowCounters;
  readonly #limit: number;
  readonly #db: Db;
  /** Networks that may be over the limit, until their window ends (this process's clock). */
  readonly #suspects = new Map<string, number>();
  #lastSweep = 0;

  constructor(options: { counters: WindowCounters; limitPerWindow: number; db: Db; log: Logger }) {
    this.#counters = options.counters;
    this.#limit = options.limitPerWindow;
    this.#db = options.db;
    options.db
      .listen(SUSPECTS_CHANNEL, (payload) => {
        const announced = Announcement.safeParse(safeJson(payload));
        if (announced.success) this.#suspect(announced.data.network, announced.data.ms_left);
      })
      .catch((error: unknown) => options.log.warn({ err: error }, 'not listening for throttled networks; each process finds them itself'));
  }

  /** Middleware before every authenticated route: a network over its limit is answered 429 at once. */
  readonly guard = async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const network = clientNetwork(clientIp(req));
    if (!this.#suspected(network)) return next();
    let count = await this.#counters.peek(network);
    if (count === undefined || count.hits < this.#limit) return next();
    if (count.hits === this.#limit) {
      // The first refusal of the window is counted too: whoever takes the count past the limit writes the window's one entry.
      count = await this.#counters.add(network);
      if (count.hits === this.#limit + 1) {
        // The error handler writes it, like any failure a route names.
        req.audit = { merchantId: null, actor: req.actor ?? 'unknown', action: 'auth.throttled', ...auditSource(req) };
      }
    }
    throw new VaultError('rate_limited', {
      message: 'Too many failed authentication attempts from this address; retry later.',
      retryAfterSeconds: Math.max(1, Math.ceil(count.msLeft / 1000)),
    });
  };

  /**
   * Counts a failed authentication. Within the limit its entry is recorded;
   * past it (requests that were already in flight when the limit was reached)
   * only the window's first is, as the network's `auth.throttled` entry.
   */
  async failed(req: Request): Promise<FailureVerdict> {
    const network = clientNetwork(clientIp(req));
    const { hits, msLeft } = await this.#counters.add(network);
    this.#suspect(network, msLeft);
    if (hits === this.#limit) {
      await this.#db
        .query('select pg_notify($1, $2)', [SUSPECTS_CHANNEL, JSON.stringify({ network, ms_left: Math.max(0, Math.round(msLeft)) })])
        .catch(() => undefined);
    }
    if (hits <= this.#limit) return 'record';
    return hits === this.#limit + 1 ? 'record-throttled' : 'drop';
  }

  #suspect(network: string, msLeft: number): void {
    const until = Date.now() + msLeft;
    if ((this.#suspects.get(network) ?? 0) < until) this.#suspects.set(network, until);
  }

  #suspected(network: string): boolean {
    const now = Date.now();
    if (now - this.#lastSweep >= 60_000) {
      this.#lastSweep = now;
      for (const [name, until] of this.#suspects) if (until <= now) this.#suspects.delete(name);
    }
    return (this.#suspects.get(network) ?? 0) > now;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
