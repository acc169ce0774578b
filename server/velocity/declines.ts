import { VaultError } from '../errors.ts';
import { clientNetwork } from '../http/client-ip.ts';
import type { Queryable } from '../storage/db.ts';

/** How many declines each source may collect in one window before its attempts are refused (429). */
export interface DeclineLimits {
  perSession: number;
  perIp: number;
  perCard: number;
  windowSeconds: number;
}

/** What a decline is attributed to: the card (by fingerprint), and for a card typed in the card fields, its session and client IP. */
export interface DeclineSource {
  merchantId: string;
  fingerprint: string;
  sessionId: string | null;
  clientIp: string | null;
}

/**
 * Card-testing limits: declines are counted per card-fields session, per
 * client IP and per card within fixed windows, in the database so every
 * vault process sharing it counts together. Past a limit, payments and
 * verifications on cards from that source, and new tokenizations from that
 * session or IP, answer 429 `rate_limited` until the window ends — without
 * reaching the acquirer, so a script cannot learn decline reasons card
 * after card.
 */
export class DeclineVelocity {
  readonly #limits: DeclineLimits;

  constructor(limits: DeclineLimits) {
    this.#limits = limits;
  }

  /** The counters of `source` with their limits. */
  counters(source: Partial<DeclineSource>): { keys: string[]; limits: number[] } {
    const keys: string[] = [];
    const limits: number[] = [];
    if (source.sessionId) keys.push(`session:${source.sessionId}`), limits.push(this.#limits.perSession);
    // An IPv6 client counts as its /64, as it could take a fresh address for every attempt.
    if (source.clientIp) keys.push(`ip:${clientNetwork(source.clientIp)}`), limits.push(this.#limits.perIp);
    if (source.merchantId && source.fingerprint) keys.push(`card:${source.merchantId}:${source.fingerprint}`), limits.push(this.#limits.perCard);
    return { keys, limits };
  }

  /** The start of the window `now` is in. */
  window(now = Date.now()): Date {
    const size = this.#limits.windowSeconds * 1000;
    return new Date(Math.floor(now / size) * size);
  }

  /** The 429 for a source past its limit: retry when the window ends. */
  refusal(now = Date.now()): VaultError {
    const end = this.window(now).getTime() + this.#limits.windowSeconds * 1000;
    return new VaultError('rate_limited', {
      message: 'Too many declined attempts; try again later.',
      retryAfterSeconds: (end - now) / 1000,
    });
  }

  /** Throws the 429 when any counter of `source` has reached its limit in the current window. */
  async check(q: Queryable, source: DeclineSource): Promise<void> {
    const { keys, limits } = this.counters(source);
    const { rows } = await q.query(
      `select 1 from decline_counters d join unnest($1::text[], $2::integer[]) as l(key, declines_allowed) on d.key = l.key
        where d.window_start = $3 and d.declines >= l.declines_allowed limit 1`,
      [keys, limits, this.window()],
    );
    if (rows.length > 0) throw this.refusal();
  }

  /** Counts one decline against every counter of `source`, in the transaction that records the decline. */
  async record(q: Queryable, source: DeclineSource): Promise<void> {
    const { keys } = this.counters(source);
    await q.query(
      `insert into decline_counters (key, window_start, declines)
       select key, $2, 1 from unnest($1::text[]) as key
       on conflict (key, window_start) do update set declines = decline_counters.declines + 1`,
      [keys, this.window()],
    );
  }

  async purgeExpired(q: Queryable): Promise<number> {
    return (await q.query('delete from decline_counters where window_start < $1', [this.window()])).rowCount;
  }
}
