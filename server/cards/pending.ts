import type { SealedCard, StoredCard } from '../keys/card-keys.ts';
import type { Queryable } from '../storage/db.ts';
import { TOKEN_RECORD, tokenRecordOf, type TokenRecord } from './records.ts';

/**
 * Details a shopper typed for a card that already had a token (unique
 * tokens, through the card fields), waiting to be proven. Until an approved
 * authorization or verification on the token uses them, the token keeps its
 * stored card: a publishable key alone cannot change a saved card.
 */
export interface PendingDetails extends StoredCard {
  exp_month: number;
  exp_year: number;
  cardholder_name: string | null;
  cvc_sealed: Uint8Array | null;
  cvc_bucket: number | null;
  /** The shopper asked for a saved card. */
  reusable: boolean;
  created_at: Date;
}

/** How long pending details wait for their proof: as long as an unused single-use token lives. */
export const PENDING_LIFETIME_MS = 30 * 60_000;

/** The token's pending details, unless they expired. */
export async function pendingDetails(q: Queryable, merchantId: string, token: string): Promise<PendingDetails | undefined> {
  const { rows } = await q.query<PendingDetails & { cvc_bucket: string | null }>(
    `select card_sealed, card_key_sealed, data_key_version, exp_month, exp_year, cardholder_name, cvc_sealed, cvc_bucket, reusable, created_at
       from token_pending_cards where merchant_id = $1 and token = $2 and expires_at > now()`,
    [merchantId, token],
  );
  const row = rows[0];
  return row === undefined ? undefined : { ...row, cvc_bucket: row.cvc_bucket === null ? null : Number(row.cvc_bucket) };
}

/**
 * Takes the pending details an authorization used, in its transaction: true
 * when they were still the token's latest (a newer tokenization, or another
 * authorization that took them first, makes this false).
 */
export async function takePending(tx: Queryable, merchantId: string, token: string, createdAt: Date): Promise<boolean> {
  const { rowCount } = await tx.query('delete from token_pending_cards where merchant_id = $1 and token = $2 and created_at = $3', [
    merchantId,
    token,
    createdAt,
  ]);
  return rowCount > 0;
}

/** Proven details become the token's card: the card sealed again for the token, the expiry, the name, and a saved card if asked. */
export async function promotePending(tx: Queryable, merchantId: string, token: string, pending: PendingDetails, sealed: SealedCard): Promise<TokenRecord> {
  const { rows } = await tx.query<{ record: unknown }>(
    `update tokens set
       card_sealed = $3, card_key_sealed = $4, data_key_version = $5,
       exp_month = $6, exp_year = $7, cardholder_name = coalesce($8, cardholder_name),
       reusable = reusable or $9,
       expires_at = case when reusable or $9 then null else expires_at end,
       updated_at = now()
     where merchant_id = $1 and token = $2
     returning ${TOKEN_RECORD}`,
    [merchantId, token, sealed.card_sealed, sealed.card_key_sealed, sealed.data_key_version, pending.exp_month, pending.exp_year, pending.cardholder_name, pending.reusable],
  );
  return tokenRecordOf(rows[0]!.record);
}
