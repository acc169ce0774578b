import type { ShopLimits } from './config.ts';
import type { ShopQueryable } from './db.ts';
import { declineMessage, GENERIC_DECLINE, tooManyCardAttempts } from './errors.ts';
import { VaultRequestError, VaultUnreachableError } from './vault-client.ts';

/** Who is trying a card: the order being paid (none for a card saved without a purchase), the shop session and the client. */
export interface AttemptScope {
  orderId?: string | undefined;
  sessionId: string;
  client: string;
}

export type AttemptKind = 'payment' | 'verification';

/** What became of an attempt. `vault_rate_limited` attempts never reached the acquirer and are not counted. */
export type AttemptOutcome = 'approved' | 'declined' | 'failed' | 'unknown' | 'vault_rate_limited';

type ScopeColumn = 'order_id' | 'session_id' | 'client';

/** How a failed vault call ends an attempt; `declineCode` for an answer that says the card was refused. */
export function failedAttempt(error: unknown): { outcome: AttemptOutcome; declineCode: string | null } {
  if (error instanceof VaultUnreachableError) return { outcome: 'unknown', declineCode: null };
  if (!(error instanceof VaultRequestError)) return { outcome: 'failed', declineCode: null };
  if (error.status === 429) return { outcome: 'vault_rate_limited', declineCode: null };
  if (error.status >= 500 || error.code === 'idempotency_in_flight') return { outcome: 'unknown', declineCode: null };
  if (error.code === 'card_declined') return { outcome: 'declined', declineCode: error.declineCode ?? 'generic_decline' };
  return { outcome: 'failed', declineCode: null };
}

/**
 * The shop's defence against card testing: every authorization it asks the
 * vault for on a shopper's behalf is a row of `card_attempts`, counted in a
 * sliding window per order, per session and per client. Past a limit the
 * shop refuses before calling the vault, and from the second decline of an
 * order or session the shopper reads one generic sentence, whatever the
 * acquirer said.
 */
export class CardAttempts {
  readonly #limits: ShopLimits;

  constructor(limits: ShopLimits) {
    this.#limits = limits;
  }

  /** Throws 429 `too_many_attempts`, with the longest wait of the limits reached, when the order, session or client has no attempt left. */
  async assertAllowed(q: ShopQueryable, scope: AttemptScope): Promise<void> {
    const limits: [ScopeColumn, string | undefined, number][] = [
      ['order_id', scope.orderId, this.#limits.cardAttemptsPerOrder],
      ['session_id', scope.sessionId, this.#limits.cardAttemptsPerSession],
      ['client', scope.client, this.#limits.cardAttemptsPerClient],
    ];
    let waitMs = 0;
    for (const [column, value, limit] of limits) {
      if (value !== undefined) waitMs = Math.max(waitMs, await this.#waitMs(q, column, value, limit));
    }
    if (waitMs > 0) throw tooManyCardAttempts(Math.ceil(waitMs / 1000));
  }

  /**
   * Counts one attempt, after checking the limits again: run it in the
   * transaction that commits the attempt, so that two carts of one client
   * racing for its last attempt cannot both get it (PGlite runs one
   * transaction at a time). Resolves with the attempt's id for `settle`.
   */
  async record(tx: ShopQueryable, kind: AttemptKind, scope: AttemptScope): Promise<string> {
    await this.assertAllowed(tx, scope);
    // What has left every window no longer counts for anything.
    await tx.query(`delete from card_attempts where created_at < now() - $1 * interval '1 millisecond'`, [this.#limits.cardAttemptWindowMs]);
    const { rows } = await tx.query<{ id: string }>(
      'insert into card_attempts (kind, order_id, session_id, client) values ($1, $2, $3, $4) returning id::text',
      [kind, scope.orderId ?? null, scope.sessionId, scope.client],
    );
    return rows[0]!.id;
  }

  async settle(q: ShopQueryable, id: string, outcome: AttemptOutcome): Promise<void> {
    await q.query('update card_attempts set outcome = $2 where id = $1::bigint', [id, outcome]);
  }

  /**
   * What the shopper reads for a decline just settled: the acquirer's reason
   * the first time in the order and the session, the same generic sentence
   * from the second decline on.
   */
  async declineMessage(q: ShopQueryable, scope: AttemptScope, declineCode: string): Promise<string> {
    const { rows } = await q.query<{ order_declines: number; session_declines: number }>(
      `select count(*) filter (where order_id = $1)::int as order_declines, count(*) filter (where session_id = $2)::int as session_declines
         from card_attempts
        where outcome = 'declined' and created_at > now() - $3 * interval '1 millisecond' and (order_id = $1 or session_id = $2)`,
      [scope.orderId ?? null, scope.sessionId, this.#limits.cardAttemptWindowMs],
    );
    const declines = Math.max(rows[0]!.order_declines, rows[0]!.session_declines);
    return declines >= 2 ? GENERIC_DECLINE : declineMessage(declineCode);
  }

  /** 0 while `column = value` has attempts left in the window; else how long until its oldest counted attempt leaves it. */
  async #waitMs(q: ShopQueryable, column: ScopeColumn, value: string, limit: number): Promise<number> {
    const { rows } = await q.query<{ wait_ms: number }>(
      `select (extract(epoch from created_at + $3 * interval '1 millisecond' - now()) * 1000)::float8 as wait_ms
         from card_attempts
        where ${column} = $1 and outcome <> 'vault_rate_limited' and created_at > now() - $3 * interval '1 millisecond'
        order by created_at desc, id desc
       offset $2 limit 1`,
      [value, limit - 1, this.#limits.cardAttemptWindowMs],
    );
    return rows[0] ? Math.max(1, rows[0].wait_ms) : 0;
  }
}
