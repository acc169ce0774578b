import { verifyAccount } from '../acquirer/verification.ts';
import type { AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import type { StoredCard } from '../keys/card-keys.ts';
import type { Merchant } from '../merchants/service.ts';
import type { CardServiceDeps } from '../cards/deps.ts';
import { pendingDetails, promotePending, takePending } from '../cards/pending.ts';
import { CHARGEABLE, READABLE } from '../cards/liveness.ts';
import { TOKEN_RECORD, tokenRecordOf } from '../cards/records.ts';
import { createdTokenBody } from './serialize.ts';

interface TokenToVerify extends StoredCard {
  chargeable: boolean;
  exp_month: number;
  exp_year: number;
  fingerprint: string;
  cvc_sealed: Uint8Array | null;
  cvc_bucket: string | null;
  session_id: string | null;
  client_ip: string | null;
}

/**
 * Account verification of an existing token (`POST /v1/tokens/{token}/verify`).
 * The card fields create tokens with the publishable key, which must never
 * reach the acquirer (it would make the fields a card-testing tool), so the
 * merchant's server asks for the verification with its secret key once the
 * token exists. The verification is the card's first authorization: the CVC
 * held with the token is used and then erased, a single-use token is spent,
 * and details waiting to be proven (unique tokens) are what it verifies —
 * kept when it succeeds, dropped when it fails. A decline counts against
 * the card-testing limits. Answers 200 with the token object and
 * `verification`, as `verify: true` on creation does.
 */
export async function verifyToken(
  deps: CardServiceDeps,
  merchant: Merchant,
  token: string,
  ctx: { actor: string; source: AuditSource; claim: IdempotencyClaim | undefined },
): Promise<StoredResponse> {
  const { rows } = await deps.db.query<TokenToVerify>(
    `select ${CHARGEABLE} as chargeable, card_sealed, card_key_sealed, data_key_version, exp_month, exp_year, fingerprint,
            cvc_sealed, cvc_bucket, session_id, client_ip
       from tokens where merchant_id = $1 and token = $2 and ${READABLE}`,
    [merchant.id, token],
  );
  const row = rows[0];
  if (row === undefined || row.card_sealed === null) throw new VaultError('token_not_found', { param: 'token' });
  // Readable but not chargeable: a spent single-use token.
  if (!row.chargeable) throw new VaultError('token_used', { param: 'token' });
  const source = { merchantId: merchant.id, fingerprint: row.fingerprint, sessionId: row.session_id, clientIp: row.client_ip };
  await deps.declines.check(deps.db, source);

  const pending = await pendingDetails(deps.db, merchant.id, token);
  const owner = pending === undefined ? { token } : { pendingFingerprint: row.fingerprint };
  const details = pending ?? { ...row, cvc_bucket: row.cvc_bucket === null ? null : Number(row.cvc_bucket) };
  const { number } = await deps.cards.open(merchant, owner, details);
  const cvc =
    details.cvc_sealed === null || details.cvc_bucket === null ? undefined : await deps.cvcs.open(merchant.id, owner, details.cvc_sealed, details.cvc_bucket);
  const verification = await verifyAccount(deps.acquirer, { number, exp_month: details.exp_month, exp_year: details.exp_year, cvc }, ctx.claim);
  const proven = pending !== undefined && verification.status === 'succeeded' ? await deps.cards.reseal(merchant, owner, pending, { token }) : undefined;

  return deps.db.transaction(async (tx) => {
    if (pending !== undefined && (await takePending(tx, merchant.id, token, pending.created_at)) && proven !== undefined) {
      await promotePending(tx, merchant.id, token, pending, proven);
    }
    const updated = await tx.query<{ record: unknown }>(
      `update tokens set cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null,
                         used_at = case when reusable then used_at else now() end, updated_at = now()
        where merchant_id = $1 and token = $2 and ${READABLE}
        returning ${TOKEN_RECORD}`,
      [merchant.id, token],
    );
    // Deleted while the acquirer answered: the verification was voided anyway, and there is no token to report on.
    if (updated.rows[0] === undefined) throw new VaultError('token_not_found', { param: 'token' });
    if (verification.status === 'failed') await deps.declines.record(tx, source);
    const record = tokenRecordOf(updated.rows[0].record);
    const response = { status: 200, body: JSON.stringify(createdTokenBody({ token: record, existing: false, verification })) };
    await recordResponse(tx, ctx.claim, response);
    // Last: an audit entry locks its merchant's chain until commit.
    await deps.audit.record(
      {
        merchantId: merchant.id,
        actor: ctx.actor,
        action: 'token.verified',
        outcome: verification.status,
        code: verification.decline_code ?? undefined,
        token,
        ...ctx.source,
        // The verification erased the CVC, and may have spent a single-use token or proven new details.
        event: { type: 'token.updated', data: record },
      },
      tx,
    );
    return response;
  });
}
