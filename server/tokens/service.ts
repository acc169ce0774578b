import { createHash } from 'node:crypto';
import { ApiError } from '../errors.ts';
import { openCardCiphertext, type CiphertextPolicy } from '../keys/card-ciphertext.ts';
import type { MerchantKeys } from '../keys/merchant-keys.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import { AcquirerError, verifyAccount } from '../payments/sandbox-acquirer.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { parseCardPlaintext, type Card } from './card.ts';

export interface TokenRecord {
  token: string;
  reusable: boolean;
  customer: string | null;
  decline_duplicates: boolean;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  cardholder_name: string | null;
  fingerprint: string;
  expires_at: Date | null;
  used_at: Date | null;
  created_at: Date;
}

export interface Verification {
  status: 'succeeded' | 'failed';
  decline_code: string | null;
}

export interface CreateTokenInput {
  merchant: Merchant;
  /** Compact JWE of the card, encrypted to a transport key. */
  ciphertext: string;
  reusable: boolean;
  customer?: string | undefined;
  value?: string | undefined;
  declineDuplicates?: boolean;
  verify?: boolean;
}

export interface TokenOutcome {
  token: TokenRecord;
  /** Unique tokens: the card was already tokenized and the existing token is returned. */
  existing: boolean;
  verification?: Verification;
}

export interface WriteHooks {
  /** Runs first in the write transaction (e.g. counting the token against its session). */
  beforeWrite?: (tx: Queryable) => Promise<void>;
  /** Runs last in the write transaction (e.g. recording the idempotent response). */
  afterWrite?: (tx: Queryable, outcome: TokenOutcome) => Promise<void>;
}

/** A single-use token that is never charged expires after this. */
const SINGLE_USE_LIFETIME = '30 minutes';
/** A CVC is only kept until the first authorization, and never longer than this. */
const CVC_LIFETIME = '30 minutes';

const RECORD_COLUMNS = `token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
  cardholder_name, fingerprint, expires_at, used_at, created_at`;

/** A token that can still be read and charged: not deleted, and not a spent or expired single-use token. */
const LIVE = `deleted_at is null and (reusable or (used_at is null and expires_at > now()))`;

/**
 * Card tokens: turns card ciphertext into a token and keeps the card sealed
 * under the merchant's data key. Reads never return card data.
 */
export class TokenVault {
  readonly #db: Db;
  readonly #keyring: TransportKeyring;
  readonly #merchantKeys: MerchantKeys;
  readonly #policy: CiphertextPolicy;

  constructor(deps: { db: Db; keyring: TransportKeyring; merchantKeys: MerchantKeys; ciphertextPolicy: CiphertextPolicy }) {
    this.#db = deps.db;
    this.#keyring = deps.keyring;
    this.#merchantKeys = deps.merchantKeys;
    this.#policy = deps.ciphertextPolicy;
  }

  async create(input: CreateTokenInput, hooks: WriteHooks = {}): Promise<TokenOutcome> {
    const plaintext = await openCardCiphertext(input.ciphertext, this.#keyring, this.#policy);
    const card = parseCardPlaintext(plaintext);
    const fingerprint = this.#merchantKeys.fingerprint(input.merchant, card.number);
    const verification = input.verify ? verify(card) : undefined;
    const ciphertextHash = createHash('sha256').update(input.ciphertext).digest();

    return this.#db.transaction(async (tx) => {
      await hooks.beforeWrite?.(tx);
      await this.#rememberCiphertext(tx, ciphertextHash);
      // One tokenization per card and merchant at a time, so duplicate checks and unique tokens hold under concurrency.
      await tx.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`${input.merchant.id}/${fingerprint}`]);
      await this.#refuseDeclinedDuplicate(tx, input.merchant.id, fingerprint);

      const existing = input.merchant.unique_tokens ? await this.#refreshExisting(tx, input, card, fingerprint) : undefined;
      const outcome: TokenOutcome = {
        token: existing ?? (await this.#insert(tx, input, card, fingerprint)),
        existing: existing !== undefined,
        ...(verification === undefined ? {} : { verification }),
      };
      await hooks.afterWrite?.(tx, outcome);
      return outcome;
    });
  }

  async get(merchantId: string, token: string): Promise<TokenRecord> {
    const { rows } = await this.#db.query<TokenRecord>(
      `select ${RECORD_COLUMNS} from tokens where merchant_id = $1 and token = $2 and ${LIVE}`,
      [merchantId, token],
    );
    if (rows[0] === undefined) throw new ApiError('token_not_found', { param: 'token' });
    return rows[0];
  }

  /** Newest first; `startingAfter` is the last token of the previous page. */
  async list(
    merchantId: string,
    filter: { customer?: string | undefined; fingerprint?: string | undefined; limit: number; startingAfter?: string | undefined },
  ): Promise<{ tokens: TokenRecord[]; hasMore: boolean }> {
    const params: unknown[] = [merchantId, filter.customer ?? null, filter.fingerprint ?? null, filter.limit + 1];
    let cursor = '';
    if (filter.startingAfter !== undefined) {
      const { rows } = await this.#db.query<{ created_at: Date }>('select created_at from tokens where merchant_id = $1 and token = $2', [
        merchantId,
        filter.startingAfter,
      ]);
      if (rows[0] === undefined) throw new ApiError('token_not_found', { param: 'starting_after' });
      params.push(rows[0].created_at, filter.startingAfter);
      cursor = 'and (created_at, token) < ($5, $6)';
    }
    const { rows } = await this.#db.query<TokenRecord>(
      `select ${RECORD_COLUMNS} from tokens
        where merchant_id = $1 and ${LIVE}
          and ($2::text is null or customer = $2)
          and ($3::text is null or fingerprint = $3)
          ${cursor}
        order by created_at desc, token desc
        limit $4`,
      params,
    );
    return { tokens: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
  }

  /** Destroys the stored card (and CVC); the token answers 404 from then on. */
  async delete(merchantId: string, token: string): Promise<void> {
    const { rowCount } = await this.#db.query(
      `update tokens set card_sealed = null, cvc_sealed = null, cvc_expires_at = null, deleted_at = now(), updated_at = now()
        where merchant_id = $1 and token = $2 and ${LIVE}`,
      [merchantId, token],
    );
    if (rowCount === 0) throw new ApiError('token_not_found', { param: 'token' });
  }

  /** Erases CVCs past their lifetime and the cards of single-use tokens that expired unused. */
  async eraseExpired(): Promise<{ cvcs: number; cards: number }> {
    const cvcs = await this.#db.query(
      'update tokens set cvc_sealed = null, cvc_expires_at = null where cvc_sealed is not null and cvc_expires_at <= now()',
    );
    const cards = await this.#db.query(
      `update tokens set card_sealed = null, cvc_sealed = null, cvc_expires_at = null, updated_at = now()
        where not reusable and used_at is null and expires_at <= now() and card_sealed is not null`,
    );
    await this.#db.query('delete from used_ciphertexts where expires_at <= now()');
    return { cvcs: cvcs.rowCount, cards: cards.rowCount };
  }

  async #rememberCiphertext(tx: Queryable, hash: Buffer): Promise<void> {
    // Kept past the longest time a JWE is accepted, so a replay is always caught.
    const keepSeconds = this.#policy.maxAgeSeconds + this.#policy.maxFutureSeconds + 60;
    const { rowCount } = await tx.query(
      `insert into used_ciphertexts (hash, expires_at) values ($1, now() + make_interval(secs => $2))
       on conflict (hash) do nothing`,
      [hash, keepSeconds],
    );
    if (rowCount === 0) throw new ApiError('replayed_ciphertext', { param: 'card' });
  }

  async #refuseDeclinedDuplicate(tx: Queryable, merchantId: string, fingerprint: string): Promise<void> {
    const { rows } = await tx.query(
      `select 1 from tokens where merchant_id = $1 and fingerprint = $2 and decline_duplicates and ${LIVE} limit 1`,
      [merchantId, fingerprint],
    );
    if (rows.length > 0) throw new ApiError('duplicate_card', { param: 'card' });
  }

  /** Unique tokens: the oldest live token of this card, with its expiry, name, address and CVC refreshed. */
  async #refreshExisting(tx: Queryable, input: CreateTokenInput, card: Card, fingerprint: string): Promise<TokenRecord | undefined> {
    const { rows } = await tx.query<{ token: string }>(
      `select token from tokens where merchant_id = $1 and fingerprint = $2 and ${LIVE} order by created_at limit 1`,
      [input.merchant.id, fingerprint],
    );
    const token = rows[0]?.token;
    if (token === undefined) return undefined;
    const sealed = this.#seal(input.merchant, token, card);
    const updated = await tx.query<TokenRecord>(
      `update tokens set
         exp_month = $3, exp_year = $4,
         cardholder_name = coalesce($5, cardholder_name),
         card_sealed = $6, data_key_version = $7,
         cvc_sealed = coalesce($8, cvc_sealed),
         cvc_expires_at = case when $8::bytea is null then cvc_expires_at else now() + interval '${CVC_LIFETIME}' end,
         reusable = reusable or $9,
         expires_at = case when reusable or $9 then null else expires_at end,
         decline_duplicates = decline_duplicates or $10,
         updated_at = now()
       where merchant_id = $1 and token = $2
       returning ${RECORD_COLUMNS}`,
      [
        input.merchant.id,
        token,
        card.exp_month,
        card.exp_year,
        card.name ?? null,
        sealed.card,
        input.merchant.data_key_version,
        sealed.cvc,
        input.reusable,
        input.declineDuplicates ?? false,
      ],
    );
    return updated.rows[0];
  }

  async #insert(tx: Queryable, input: CreateTokenInput, card: Card, fingerprint: string): Promise<TokenRecord> {
    const token = input.value ?? newId('tok');
    const sealed = this.#seal(input.merchant, token, card);
    const { rows } = await tx.query<TokenRecord>(
      `insert into tokens (merchant_id, token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
                           cardholder_name, fingerprint, card_sealed, data_key_version, cvc_sealed, cvc_expires_at, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
               case when $14::bytea is null then null else now() + interval '${CVC_LIFETIME}' end,
               case when $3 then null else now() + interval '${SINGLE_USE_LIFETIME}' end)
       on conflict (merchant_id, token) do nothing
       returning ${RECORD_COLUMNS}`,
      [
        input.merchant.id,
        token,
        input.reusable,
        input.customer ?? null,
        input.declineDuplicates ?? false,
        card.brand,
        card.last4,
        card.exp_month,
        card.exp_year,
        card.name ?? null,
        fingerprint,
        sealed.card,
        input.merchant.data_key_version,
        sealed.cvc,
      ],
    );
    if (rows[0] === undefined) throw new ApiError('token_value_taken', { param: 'value' });
    return rows[0];
  }

  #seal(merchant: Merchant, token: string, card: Card): { card: Buffer; cvc: Buffer | null } {
    const stored = JSON.stringify({ number: card.number, ...(card.postal_code === undefined ? {} : { postal_code: card.postal_code }) });
    return {
      card: this.#merchantKeys.sealCard(merchant, token, Buffer.from(stored, 'utf8')),
      cvc: card.cvc === undefined ? null : this.#merchantKeys.sealCvc(merchant, token, card.cvc),
    };
  }
}

function verify(card: Card): Verification {
  try {
    return verifyAccount(card.number);
  } catch (error) {
    if (error instanceof AcquirerError) throw new ApiError('acquirer_error', { cause: error });
    throw error;
  }
}
