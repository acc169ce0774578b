import { setTimeout as sleep } from 'node:timers/promises';
import type { Queryable } from '../storage/db.ts';
import { dueCondition } from './charger.ts';

/** How often a clock advance looks whether its charges have all run. */
const POLL_MS = 50;

/** How many of the merchant's subscriptions have a try due by `upTo` (by default: by its clock now) that has not run yet. */
export async function chargesDue(q: Queryable, merchantId: string, upTo?: Date): Promise<number> {
  const { rows } =
    upTo === undefined
      ? await q.query<{ n: number }>(`select count(*)::int as n from subscriptions s where ${dueCondition(merchantId)}`, [merchantId])
      : await q.query<{ n: number }>(
          `select count(*)::int as n from subscriptions s where s.status in ('active', 'past_due') and s.merchant_id = $1 and s.next_charge_at <= $2`,
          [merchantId, upTo],
        );
  return rows[0]!.n;
}

/**
 * Waits until every try of the merchant's subscriptions due by `upTo` has
 * run (each recorded try moves its subscription's next date on, so none is
 * left due), whichever vault node runs them. False when `timeoutMs` passed
 * first; throws when `signal` aborts.
 */
export async function waitForCharges(q: Queryable, merchantId: string, upTo: Date, options: { signal: AbortSignal; timeoutMs: number }): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if ((await chargesDue(q, merchantId, upTo)) === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
}

/** The tries of the merchant's subscriptions dated within (`after`, `upTo`], by outcome. */
export async function chargeSummary(q: Queryable, merchantId: string, after: Date, upTo: Date): Promise<{ succeeded: number; failed: number }> {
  const { rows } = await q.query<{ succeeded: number; failed: number }>(
    `select count(*) filter (where outcome = 'succeeded')::int as succeeded, count(*) filter (where outcome = 'failed')::int as failed
       from subscription_charges where merchant_id = $1 and due_at > $2 and due_at <= $3`,
    [merchantId, after, upTo],
  );
  return rows[0]!;
}
