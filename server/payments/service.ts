import { AcquirerError, type Acquirer, type AuthorizationResult } from '../acquirer/acquirer.ts';
import { acquirerReference } from '../acquirer/reference.ts';
import type { AuditEntry, AuditLog, AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { errorBody } from '../http/error-response.ts';
import { PartlyCommitted, recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { openCardCiphertext, replayKey, replayRecordUntil, type CiphertextPolicy } from '../keys/card-ciphertext.ts';
import type { CardSealer, StoredCard } from '../keys/card-keys.ts';
import type { CvcKeys } from '../keys/cvc-keys.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { newestFirst } from '../storage/pagination.ts';
import { CHARGEABLE, READABLE } from '../cards/liveness.ts';
import type { CardServiceDeps } from '../cards/deps.ts';
import { pendingDetails, promotePending, takePending } from '../cards/pending.ts';
import { TOKEN_RECORD, tokenRecordOf, type TokenRecord } from '../cards/records.ts';
import type { DeclineVelocity } from '../velocity/declines.ts';
import { parseCvcPlaintext } from '../cards/cvc.ts';
import type { Agreement, CreatePaymentInput } from './schema.ts';
import type { NetworkTokens } from '../network-tokens/service.ts';
import { paymentBody, refundBody } from './serialize.ts';
import { captureAmount, checkVoidable, refundAmount, statusAfterRefund } from './changes.ts';
import { credentialTerms, type TokenCredential } from './stored-credential.ts';

export type PaymentStatus = 'authorized' | 'captured' | 'voided' | 'refunded' | 'partially_refunded' | 'declined';

export interface PaymentRecord {
  id: string;
  token: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  amount_captured: number;
  amount_refunded: number;
  brand: string;
  last4: string;
  reference: string | null;
  recurring: boolean;
  decline_code: string | null;
  /** What the authorization went on: the card number, or the token's network token. */
  credential: 'pan' | 'network_token';
  initiator: 'customer' | 'merchant';
  agreement: Agreement | null;
  channel: 'ecommerce' | 'moto';
  network_transaction_id: string | null;
  subscription_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface RefundRecord {
  id: string;
  payment_id: string;
  amount: number;
  created_at: Date;
}

/** Who asks, and the Idempotency-Key claim the response is recorded against. */
export interface PaymentContext {
  merchant: Merchant;
  actor: string;
  source: AuditSource;
  claim: IdempotencyClaim | undefined;
  /**
   * Work that commits with the payment's new record or change (a payment
   * link counting it, a batch item's result), run before the payment's
   * audit entries take the merchant's chain; the entries it answers are
   * recorded after the payment's own.
   */
  along?: (tx: Queryable, payment: PaymentRecord, response: StoredResponse) => Promise<AuditEntry[]>;
}

// bigint columns come back as strings from `pg`; the API speaks numbers (amounts stay far below 2^53).
export const COLUMNS = `id, token, status, amount::float8 as amount, currency, amount_captured::float8 as amount_captured,
  amount_refunded::float8 as amount_refunded, brand, last4, reference, recurring, decline_code, credential,
  initiator, agreement, channel, network_transaction_id, subscription_id, created_at, updated_at`;

interface TokenForPayment extends StoredCard, TokenCredential {
  readable: boolean;
  chargeable: boolean;
  cvc_sealed: Uint8Array | null;
  cvc_bucket: string | null;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: string;
  session_id: string | null;
  client_ip: string | null;
  /** The network's pan_update gave the card new last 4 digits: the sealed number is the old card's. */
  pan_outdated: boolean;
}

/**
 * Payments on tokens. A payment is authorized at the acquirer before the
 * vault's transaction, so no lock is held while the acquirer answers; the
 * transaction then locks the token, checks it again and records the
 * payment, spends a single-use token and erases the CVC. An authorization
 * whose token was spent meanwhile by a concurrent payment is voided.
 *
 * Capture, void and refund lock the payment row, so concurrent calls on one
 * payment run one after another and each sees the amounts the last left.
 */
export class PaymentService {
  readonly #db: Db;
  readonly #keyring: TransportKeyring;
  readonly #cards: CardSealer;
  readonly #cvcs: CvcKeys;
  readonly #policy: CiphertextPolicy;
  readonly #acquirer: Acquirer;
  readonly #audit: AuditLog;
  readonly #declines: DeclineVelocity;
  readonly #networkTokens: NetworkTokens | undefined;

  constructor(deps: CardServiceDeps & { networkTokens?: NetworkTokens | undefined }) {
    this.#networkTokens = deps.networkTokens;
    this.#db = deps.db;
    this.#keyring = deps.keyring;
    this.#cards = deps.cards;
    this.#cvcs = deps.cvcs;
    this.#policy = deps.ciphertextPolicy;
    this.#acquirer = deps.acquirer;
    this.#audit = deps.audit;
    this.#declines = deps.declines;
  }

  /**
   * Authorizes (and by default captures) a payment on a token; a decline is
   * stored and answered 402, and counts against the card-testing limits of
   * the token's card, session and client IP (past them: 429, and the
   * acquirer is not asked). Details a shopper typed for a unique token and
   * nobody proved yet are what a payment without a re-collected CVC uses:
   * approved, they become the token's card; declined, they are dropped.
   */
  async create(input: CreatePaymentInput, ctx: PaymentContext): Promise<StoredResponse> {
    const { merchant } = ctx;
    const token = await this.#usableToken(this.#db, merchant.id, input.token, false);
    const terms = credentialTerms(input, token);
    // A merchant-initiated payment needs a chain an approved customer payment set up: it cannot test a card.
    const customerPresent = terms.initiator === 'customer';
    const declineSource = { merchantId: merchant.id, fingerprint: token.fingerprint, sessionId: token.session_id, clientIp: token.client_ip };
    if (customerPresent) await this.#declines.check(this.#db, declineSource);

    // Details a shopper typed are proven only by the shopper's own payment, never by a merchant-initiated one.
    const pending = input.cvc === undefined && customerPresent ? await pendingDetails(this.#db, merchant.id, input.token) : undefined;
    const owner = pending === undefined ? { token: input.token } : { pendingFingerprint: token.fingerprint };
    const details = pending ?? { ...token, cvc_bucket: token.cvc_bucket === null ? null : Number(token.cvc_bucket) };
    const card = await this.#cards.open(merchant, owner, details);

    // A re-collected CVC comes encrypted from the card fields; the one held with the token is used once.
    let cvcHash: Buffer | undefined;
    let cvc: string | undefined;
    if (input.cvc !== undefined) {
      const plaintext = await openCardCiphertext(input.cvc, this.#keyring, this.#policy, 'cvc');
      cvc = parseCvcPlaintext(plaintext, card.number);
      cvcHash = replayKey(input.cvc);
      const seen = await this.#db.query('select 1 from used_ciphertexts where hash = $1', [cvcHash]);
      if (seen.rowCount > 0) throw new VaultError('replayed_ciphertext', { param: 'cvc' });
    } else if (customerPresent && details.cvc_sealed !== null && details.cvc_bucket !== null) {
      cvc = await this.#cvcs.open(merchant.id, owner, details.cvc_sealed, details.cvc_bucket);
    }

    const id = acquirerReference('pay', ctx.claim);
    // An active network token is used, with a cryptogram for this payment; else (none yet, suspended, deleted) the card number.
    // Details waiting to be proven are a card number's: they go as typed.
    const network = pending === undefined ? await this.#networkTokens?.credential(merchant, input.token) : undefined;
    // The old card's number after the issuer replaced it: sending it would charge a closed card, or the wrong one.
    if (network === undefined && pending === undefined && token.pan_outdated) throw new VaultError('card_outdated', { param: 'token' });
    let outcome: AuthorizationResult;
    try {
      outcome = await this.#acquirer.authorize({
        reference: id,
        card:
          network === undefined
            ? { number: card.number, exp_month: details.exp_month, exp_year: details.exp_year, cvc }
            : { number: network.number, exp_month: network.exp_month, exp_year: network.exp_year },
        ...(network === undefined ? {} : { networkToken: { cryptogram: network.cryptogram, eci: network.eci } }),
        amount: input.amount,
        currency: input.currency,
        initiator: terms.initiator,
        recurring: terms.recurring,
        channel: terms.channel,
        agreement: terms.agreement,
        previousNetworkTransactionId: terms.previousNetworkTransactionId,
      });
      if (outcome.approved && input.capture) await this.#acquirer.capture(id, input.amount);
    } catch (error) {
      if (error instanceof AcquirerError) throw new VaultError('acquirer_error', { cause: error });
      throw error;
    }

    const status: PaymentStatus = !outcome.approved ? 'declined' : input.capture ? 'captured' : 'authorized';
    const declineCode = outcome.approved ? null : outcome.declineCode;
    const proven = pending !== undefined && outcome.approved ? await this.#cards.reseal(merchant, owner, pending, { token: input.token }) : undefined;
    const record = this.#db.transaction(async (tx): Promise<{ response: StoredResponse } | { refusal: Error }> => {
      try {
        await this.#usableToken(tx, merchant.id, input.token, true);
      } catch (refusal) {
        return { refusal: refusal as Error };
      }
      if (cvcHash !== undefined) {
        const recorded = await tx.query('insert into used_ciphertexts (hash, expires_at) values ($1, $2) on conflict (hash) do nothing', [
          cvcHash,
          replayRecordUntil(this.#policy),
        ]);
        if (recorded.rowCount === 0) return { refusal: new VaultError('replayed_ciphertext', { param: 'cvc' }) };
      }
      const { rows } = await tx.query<PaymentRecord>(
        `insert into payments (merchant_id, id, token, status, amount, currency, amount_captured, brand, last4, reference, recurring, decline_code,
                               credential, initiator, agreement, channel, network_transaction_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         returning ${COLUMNS}`,
        [
          merchant.id,
          id,
          input.token,
          status,
          input.amount,
          input.currency,
          status === 'captured' ? input.amount : 0,
          token.brand,
          token.last4,
          input.reference ?? null,
          terms.recurring,
          declineCode,
          network === undefined ? 'pan' : 'network_token',
          terms.initiator,
          terms.agreement,
          terms.channel,
          outcome.approved ? (outcome.networkTransactionId ?? null) : null,
        ],
      );
      // Pending details that were used are spent either way; approved, they are the card now.
      let promoted: TokenRecord | undefined;
      if (pending !== undefined && (await takePending(tx, merchant.id, input.token, pending.created_at)) && proven !== undefined) {
        promoted = await promotePending(tx, merchant.id, input.token, pending, proven);
      }
      // The authorization was made: a single-use token is spent (approved or declined) and the CVC is gone.
      // An approved setup_future_usage payment starts the token's stored-credential chain.
      const chain = terms.setupFutureUsage && outcome.approved ? (outcome.networkTransactionId ?? null) : null;
      const spent = await tx.query<{ record: unknown }>(
        `update tokens set used_at = case when reusable then used_at else now() end,
                           cvc_sealed = null, cvc_bucket = null, cvc_expires_at = null, updated_at = now(),
                           network_transaction_id = coalesce($3, network_transaction_id),
                           stored_credential_agreement = case when $3::text is null then stored_credential_agreement else $4 end
          where merchant_id = $1 and token = $2
          returning ${TOKEN_RECORD}`,
        [merchant.id, input.token, chain, terms.agreement],
      );
      const chained = chain === null ? undefined : tokenRecordOf(spent.rows[0]!.record);
      if (status === 'declined' && customerPresent) await this.#declines.record(tx, declineSource);
      const payment = rows[0]!;
      const response: StoredResponse =
        status === 'declined'
          ? {
              status: 402,
              body: JSON.stringify(errorBody(new VaultError('card_declined', { extra: { decline_code: declineCode, payment: id } }))),
            }
          : { status: 201, body: JSON.stringify(paymentBody(payment)) };
      await recordResponse(tx, ctx.claim, response);
      const alongside = ctx.along === undefined ? [] : await ctx.along(tx, payment, response);
      // Last: an audit entry locks the merchant's chain until commit.
      const entry = { merchantId: merchant.id, actor: ctx.actor, ...ctx.source, token: input.token, paymentId: id, outcome: 'succeeded' } as const;
      const updatedToken = chained ?? promoted;
      if (updatedToken !== undefined) {
        await this.#audit.record({ ...entry, paymentId: undefined, action: 'token.updated', event: { type: 'token.updated', data: updatedToken } }, tx);
      }
      if (status === 'declined') {
        await this.#audit.record({ ...entry, action: 'payment.declined', code: declineCode ?? undefined, event: { type: 'payment.declined', data: payment } }, tx);
      } else {
        // A capture at once is two events: the authorization, then the capture.
        const authorized = status === 'captured' ? { ...payment, status: 'authorized' as const, amount_captured: 0 } : payment;
        await this.#audit.record({ ...entry, action: 'payment.authorized', event: { type: 'payment.authorized', data: authorized } }, tx);
        if (status === 'captured') await this.#audit.record({ ...entry, action: 'payment.captured', event: { type: 'payment.captured', data: payment } }, tx);
      }
      for (const extra of alongside) await this.#audit.record(extra, tx);
      return { response };
    });
    // The acquirer has answered but the vault could not record it (storage lost, or its commit unconfirmed):
    // with a key, its claim and reference are kept, so a retry finds the same authorization instead of charging again.
    const settled = await record.catch((error: unknown) => {
      throw ctx.claim === undefined ? error : new PartlyCommitted(error);
    });

    if (!('refusal' in settled)) return settled.response;
    // The token went away (spent, deleted) or the CVC was replayed while the acquirer answered: undo the payment.
    if (status === 'captured') await this.#acquirer.refund(id, newId('re'), input.amount).catch(() => undefined);
    else if (status === 'authorized') await this.#acquirer.void(id).catch(() => undefined);
    throw settled.refusal;
  }

  async capture(paymentId: string, amount: number | undefined, ctx: PaymentContext): Promise<StoredResponse> {
    return this.#change(paymentId, ctx, 'payment.captured', async (tx, payment) => {
      const capture = captureAmount(payment, amount);
      await this.#acquirer.capture(payment.id, capture);
      const updated = await update(tx, ctx.merchant.id, payment.id, `status = 'captured', amount_captured = $3`, [capture]);
      return { response: { status: 200, body: JSON.stringify(paymentBody(updated)) }, payment: updated };
    });
  }

  async void(paymentId: string, ctx: PaymentContext): Promise<StoredResponse> {
    return this.#change(paymentId, ctx, 'payment.voided', async (tx, payment) => {
      checkVoidable(payment);
      await this.#acquirer.void(payment.id);
      const updated = await update(tx, ctx.merchant.id, payment.id, `status = 'voided'`, []);
      return { response: { status: 200, body: JSON.stringify(paymentBody(updated)) }, payment: updated };
    });
  }

  async refund(paymentId: string, amount: number | undefined, ctx: PaymentContext): Promise<StoredResponse> {
    return this.#change(paymentId, ctx, 'payment.refunded', async (tx, payment) => {
      const refund = refundAmount(payment, amount);
      const refundId = newId('re');
      await this.#acquirer.refund(payment.id, refundId, refund);
      const { rows } = await tx.query<RefundRecord>(
        `insert into refunds (merchant_id, id, payment_id, amount) values ($1, $2, $3, $4)
         returning id, payment_id, amount::float8 as amount, created_at`,
        [ctx.merchant.id, refundId, payment.id, refund],
      );
      const updated = await update(
        tx,
        ctx.merchant.id,
        payment.id,
        `amount_refunded = amount_refunded + $3, status = $4`,
        [refund, statusAfterRefund(payment, refund)],
      );
      return { response: { status: 201, body: JSON.stringify(refundBody(rows[0]!, updated)) }, payment: updated };
    });
  }

  async get(merchantId: string, paymentId: string): Promise<PaymentRecord> {
    const { rows } = await this.#db.query<PaymentRecord>(`select ${COLUMNS} from payments where merchant_id = $1 and id = $2`, [
      merchantId,
      paymentId,
    ]);
    if (rows[0] === undefined) throw new VaultError('payment_not_found', { param: 'id' });
    return rows[0];
  }

  /** Newest first; `startingAfter` is the last payment id of the previous page. */
  async list(
    merchantId: string,
    filter: { reference?: string | undefined; token?: string | undefined; subscription?: string | undefined; limit: number; startingAfter?: string | undefined },
  ): Promise<{ payments: PaymentRecord[]; hasMore: boolean }> {
    const page = await newestFirst<PaymentRecord>(this.#db, {
      select: COLUMNS,
      from: 'payments',
      idColumn: 'id',
      merchantId,
      where: '($3::text is null or reference = $3) and ($4::text is null or token = $4) and ($5::text is null or subscription_id = $5)',
      params: [filter.reference ?? null, filter.token ?? null, filter.subscription ?? null],
      limit: filter.limit,
      startingAfter: filter.startingAfter,
      notFound: 'payment_not_found',
    });
    return { payments: page.rows, hasMore: page.hasMore };
  }

  /** Locks the payment, applies `work` (which refuses by throwing), records the response and the audit entry that is also the event. */
  async #change(
    paymentId: string,
    ctx: PaymentContext,
    action: 'payment.captured' | 'payment.voided' | 'payment.refunded',
    work: (tx: Queryable, payment: PaymentRecord) => Promise<{ response: StoredResponse; payment: PaymentRecord }>,
  ): Promise<StoredResponse> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<PaymentRecord>(`select ${COLUMNS} from payments where merchant_id = $1 and id = $2 for update`, [
        ctx.merchant.id,
        paymentId,
      ]);
      const payment = rows[0];
      if (payment === undefined) throw new VaultError('payment_not_found', { param: 'id' });
      let changed: { response: StoredResponse; payment: PaymentRecord };
      try {
        changed = await work(tx, payment);
      } catch (error) {
        if (error instanceof AcquirerError) throw new VaultError('acquirer_error', { cause: error });
        throw error;
      }
      await recordResponse(tx, ctx.claim, changed.response);
      const alongside = ctx.along === undefined ? [] : await ctx.along(tx, changed.payment, changed.response);
      // Last: an audit entry locks the merchant's chain until commit.
      await this.#audit.record(
        {
          merchantId: ctx.merchant.id,
          actor: ctx.actor,
          ...ctx.source,
          action,
          outcome: 'succeeded',
          token: payment.token,
          paymentId: payment.id,
          event: { type: action, data: changed.payment },
        },
        tx,
      );
      for (const extra of alongside) await this.#audit.record(extra, tx);
      return changed.response;
    });
  }

  /** The token if a payment may be made on it now; `lock` holds its row to the end of the transaction. */
  async #usableToken(q: Queryable, merchantId: string, token: string, lock: boolean): Promise<TokenForPayment> {
    const { rows } = await q.query<TokenForPayment>(
      `select ${READABLE} as readable, ${CHARGEABLE} as chargeable, card_sealed, card_key_sealed, data_key_version, cvc_sealed, cvc_bucket,
              brand, last4, exp_month, exp_year, fingerprint, session_id, client_ip,
              reusable, moto, network_transaction_id, stored_credential_agreement, pan_outdated_at is not null as pan_outdated
         from tokens where merchant_id = $1 and token = $2 ${lock ? 'for update' : ''}`,
      [merchantId, token],
    );
    const row = rows[0];
    if (row === undefined || !row.readable || row.card_sealed === null) throw new VaultError('token_not_found', { param: 'token' });
    // Readable but not chargeable: a spent single-use token.
    if (!row.chargeable) throw new VaultError('token_used', { param: 'token' });
    return row;
  }
}

async function update(tx: Queryable, merchantId: string, paymentId: string, set: string, params: unknown[]): Promise<PaymentRecord> {
  const { rows } = await tx.query<PaymentRecord>(
    `update payments set ${set}, updated_at = now() where merchant_id = $1 and id = $2 returning ${COLUMNS}`,
    [merchantId, paymentId, ...params],
  );
  return rows[0]!;
}
