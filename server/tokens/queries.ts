import type { AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import type { Queryable } from '../storage/db.ts';
import { newestFirst } from '../storage/pagination.ts';
import { READABLE } from '../cards/liveness.ts';
import { TOKEN_RECORD, tokenRecordOf, type TokenRecord } from '../cards/records.ts';

export async function getToken(db: Queryable, merchantId: string, token: string): Promise<TokenRecord> {
  const { rows } = await db.query<{ record: unknown }>(`select ${TOKEN_RECORD} from tokens where merchant_id = $1 and token = $2 and ${READABLE}`, [
    merchantId,
    token,
  ]);
  if (rows[0] === undefined) throw new VaultError('token_not_found', { param: 'token' });
  return tokenRecordOf(rows[0].record);
}

/** Newest first; `startingAfter` is the last token of the previous page. */
export async function listTokens(
  db: Queryable,
  merchantId: string,
  filter: { customer?: string | undefined; fingerprint?: string | undefined; limit: number; startingAfter?: string | undefined },
): Promise<{ tokens: TokenRecord[]; hasMore: boolean }> {
  const page = await newestFirst<{ record: unknown }>(db, {
    select: TOKEN_RECORD,
    from: 'tokens',
    idColumn: 'token',
    merchantId,
    where: `${READABLE} and ($3::text is null or customer = $3) and ($4::text is null or fingerprint = $4)`,
    params: [filter.customer ?? null, filter.fingerprint ?? null],
    limit: filter.limit,
    startingAfter: filter.startingAfter,
    notFound: 'token_not_found',
  });
  return { tokens: page.rows.map((row) => tokenRecordOf(row.record)), hasMore: page.hasMore };
}

/**
 * Destroys the stored card — its ciphertext and its own key — the CVC,
 * any details waiting to be proven and its network tokens' numbers; the token answers 404 from then on. The
 * audit entry is written by the same statement.
 */
export async function deleteToken(db: Queryable, merchantId: string, token: string, actor: string, source: AuditSource): Promise<void> {
  const { rowCount } = await db.query(
    `with deleted as (
       update tokens set card_sealed = null, card_key_sealed = null, cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null,
                         deleted_at = now(), updated_at = now()
        where merchant_id = $1 and token = $2 and ${READABLE}
        returning token, ${TOKEN_RECORD}
     ), pending as (
       delete from token_pending_cards where merchant_id = $1 and token in (select token from deleted)
     ), network as (
       -- The card's network tokens are of no use without it: their numbers go with it.
       update network_tokens set dpan_sealed = null, dpan_key_sealed = null, updated_at = now()
        where merchant_id = $1 and token in (select token from deleted) and dpan_sealed is not null
     )
     insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
     select $3, $1, $4, 'token.deleted', 'succeeded', token, $5, $6, 'token.deleted', record::jsonb from deleted`,
    [merchantId, token, newId('evt'), actor, source.clientIp, source.requestId],
  );
  if (rowCount === 0) throw new VaultError('token_not_found', { param: 'token' });
}
