import type { AuditLog, AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import type { NetworkTokens } from '../network-tokens/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
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
 * Destroys the stored card — its ciphertext and its own key — the CVC and
 * any details waiting to be proven; the token answers 404 from then on. Its
 * network tokens go with it (`NetworkTokens.tokenDeleted`: deleted, their
 * numbers erased, the network told by a job), and the audit entries — the
 * token's `token.deleted`, theirs `network_token.updated` — are written last,
 * all in one transaction.
 */
export async function deleteToken(
  deps: { db: Db; audit: AuditLog; networkTokens?: Pick<NetworkTokens, 'tokenDeleted'> | undefined },
  merchantId: string,
  token: string,
  actor: string,
  source: AuditSource,
): Promise<void> {
  await deps.db.transaction(async (tx) => {
    const { rows } = await tx.query<{ token: string; record: unknown }>(
      `with deleted as (
         update tokens set card_sealed = null, card_key_sealed = null, cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null,
                           deleted_at = now(), updated_at = now()
          where merchant_id = $1 and token = $2 and ${READABLE}
          returning token, ${TOKEN_RECORD}
       ), pending as (
         delete from token_pending_cards where merchant_id = $1 and token in (select token from deleted)
       )
       select token, record from deleted`,
      [merchantId, token],
    );
    const deleted = rows[0];
    if (deleted === undefined) throw new VaultError('token_not_found', { param: 'token' });
    const networkEntries = (await deps.networkTokens?.tokenDeleted(tx, merchantId, token, { actor, source })) ?? [];
    await deps.audit.recordMany(
      [
        {
          merchantId,
          actor,
          ...source,
          action: 'token.deleted',
          outcome: 'succeeded',
          token,
          event: { type: 'token.deleted', data: tokenRecordOf(deleted.record) },
        },
        ...networkEntries,
      ],
      tx,
    );
  });
}
