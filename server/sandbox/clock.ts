import { VaultError } from '../errors.ts';
import type { Queryable } from '../storage/db.ts';

/**
 * A merchant's sandbox clock (Stripe's test clocks, for one merchant): it
 * runs with real time, `ahead` of it by however far the merchant advanced
 * it, and only ever moves forward. Everything that is due for a merchant
 * (its subscriptions' charges) is due by this clock, which the database
 * reads as `tessera_merchant_now(merchant)`, so every vault node agrees.
 */
export interface ClockReading {
  now: Date;
  /** When the clock was last advanced to (null: never advanced, it runs on real time). */
  advancedTo: Date | null;
}

/** The furthest one advance may go, so a mistyped year does not schedule millennia of charges. */
const MAX_ADVANCE_MS = 10 * 366 * 86_400_000;

export async function readClock(q: Queryable, merchantId: string): Promise<ClockReading> {
  const { rows } = await q.query<{ now: Date; advanced_to: Date | null }>(
    `select tessera_merchant_now($1) as now, (select updated_at + ahead from sandbox_clocks where merchant_id = $1) as advanced_to`,
    [merchantId],
  );
  return { now: rows[0]!.now, advancedTo: rows[0]!.advanced_to };
}

/**
 * A time the clock passed less than this long ago is taken as where the
 * clock already is (no move) rather than refused: the same advance sent
 * twice, or by two nodes at once, reaches a clock that has ticked on since.
 */
const SAME_TIME_MS = 60_000;

/**
 * Moves the merchant's clock to `to`, in the caller's transaction, and
 * answers where it was and where it is. Earlier than the clock's current
 * time by more than `SAME_TIME_MS` is refused (422 `clock_cannot_go_back`);
 * the row lock makes concurrent advances of one merchant take turns.
 */
export async function advanceClock(tx: Queryable, merchantId: string, to: Date): Promise<{ from: Date; to: Date }> {
  await tx.query(`insert into sandbox_clocks (merchant_id, ahead) values ($1, interval '0') on conflict (merchant_id) do nothing`, [merchantId]);
  const { rows } = await tx.query<{ now: Date }>(`select now() + ahead as now from sandbox_clocks where merchant_id = $1 for update`, [merchantId]);
  const from = rows[0]!.now;
  if (to.getTime() < from.getTime() - SAME_TIME_MS) throw new VaultError('clock_cannot_go_back', { param: 'advance_to' });
  if (to.getTime() <= from.getTime()) return { from, to: from };
  if (to.getTime() - from.getTime() > MAX_ADVANCE_MS) {
    throw new VaultError('parameter_invalid', { message: 'A sandbox clock moves at most 10 years in one advance.', param: 'advance_to' });
  }
  await tx.query(`update sandbox_clocks set ahead = $2::timestamptz - now(), updated_at = now() where merchant_id = $1`, [merchantId, to]);
  return { from, to };
}
