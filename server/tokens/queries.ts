import type { AuditSource } from '../audit/audit.ts';
import { ApiError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import type { Queryable } from '../storage/db.ts';
import { READABLE, TOKEN_COLUMNS, type TokenRecord } from './records.ts';

export async function getToken(db: Queryable, merchantId: string, token: string): Promise<TokenRecord> {
  const { rows } = await db.query<TokenRecord>(`select ${TOKEN_COLUMNS} from tokens where merchant_id = $1 and token = $2 and ${READABLE}`, [
    merchantId,
    token,
  ]);
  if (rows[0] === undefined) throw new ApiError('token_not_found', { param: 'token' });
  return rows[0];
}

/** Newest first; `startingAfter` is the last token of the previous page. */
export async function listTokens(
  db: Queryable,
  merchantId: string,
  filter: { customer?: string | undefined; fingerprint?: string | undefined; limit: number; startingAfter?: string | undefined },
): Promise<{ tokens: TokenRecord[]; hasMore: boolean }> {
  const params: unknown[] = [merchantId, filter.customer ?? null, filter.fingerprint ?? null, filter.limit + 1];
  let cursor = '';
  if (filter.startingAfter !== undefined) {
    const { rows } = await db.query<{ created_at: Date }>('select created_at from tokens where merchant_id = $1 and token = $2', [
      merchantId,
      filter.startingAfter,
    ]);
    if (rows[0] === undefined) throw new ApiError('token_not_found', { param: 'starting_after' });
    params.push(rows[0].created_at, filter.startingAfter);
    cursor = 'and (created_at, token) < ($5, $6)';
  }
  const { rows } = await db.query<TokenRecord>(
    `select ${TOKEN_COLUMNS} from tokens
      where merchant_id = $1 and ${READABLE}
        and ($2::text is null or customer = $2)
        and ($3::text is null or fingerprint = $3)
        ${cursor}
      order by created_at desc, token desc
      limit $4`,
    params,
  );
  return { tokens: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
}

/**
 * Destroys the stored card — its ciphertext and its own key — the CVC and
 * any details waiting to be proven; the token answers 404 from then on. The
 * audit entry is written by the same statement.
 */
export async function deleteToken(db: Queryable, merchantId: string, token: string, actor: string, source: AuditSource): Promise<void> {
  const { rowCount } = await db.query(
    `with deleted as (
       update tokens set card_sealed = null, card_key_sealed = null, cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null,
                         deleted_at = now(), updated_at = now()
        where merchant_id = $1 and token = $2 and ${READABLE}
        returning token
     ), pending as (
       delete from token_pending_cards where merchant_id = $1 and token in (select token from deleted)
     )
     insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id)
     select $3, $1, $4, 'token.deleted', 'succeeded', token, $5, $6 from deleted`,
    [merchantId, token, newId('evt'), actor, source.clientIp, source.requestId],
  );
  if (rowCount === 0) throw new ApiError('token_not_found', { param: 'token' });
}
