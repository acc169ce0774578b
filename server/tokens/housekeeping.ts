import type { CvcKeys } from '../keys/cvc-keys.ts';
import type { Db } from '../storage/db.ts';
import type { DeclineVelocity } from '../velocity/declines.ts';

export interface ErasedData {
  cvcs: number;
  cards: number;
  pending: number;
  cvcKeys: number;
}

/**
 * Erases what must not outlive its purpose: CVCs past their lifetime, the
 * cards (and card keys) of single-use tokens that expired unused, details
 * for unique tokens nobody proved, replay records and decline counters past
 * their window — then destroys the CVC bucket keys whose CVCs are all past
 * their lifetime, which makes every copy of those CVCs unreadable.
 */
export async function eraseExpired(deps: { db: Db; cvcs: CvcKeys; declines: DeclineVelocity }): Promise<ErasedData> {
  const { db } = deps;
  const cvcs = await db.query(
    'update tokens set cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null where cvc_sealed is not null and cvc_expires_at <= now()',
  );
  const cards = await db.query(
    `update tokens set card_sealed = null, card_key_sealed = null, cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null, updated_at = now()
      where not reusable and used_at is null and expires_at <= now() and card_sealed is not null`,
  );
  const pending = await db.query('delete from token_pending_cards where expires_at <= now()');
  // A token batch checks its items' iat against its acceptance, however late it runs: the records a batch
  // still to be processed could replay (any expiring after its acceptance) stay until it is done.
  await db.query(
    `delete from used_ciphertexts
      where expires_at <= least(now(), (select min(created_at) from token_batches where status <> 'completed'))`,
  );
  await deps.declines.purgeExpired(db);
  const cvcKeys = await deps.cvcs.destroyExpired();
  return { cvcs: cvcs.rowCount, cards: cards.rowCount, pending: pending.rowCount, cvcKeys };
}
