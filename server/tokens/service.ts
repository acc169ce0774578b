import { createHash, type KeyObject } from 'node:crypto';
import type { AuditEntry, AuditLog, AuditSource } from '../audit/audit.ts';
import { ApiError } from '../errors.ts';
import { openCardCiphertext, type CiphertextPolicy } from '../keys/card-ciphertext.ts';
import type { MerchantKeys } from '../keys/merchant-keys.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { newId } from '../lib/ids.ts';
import { Semaphore } from '../lib/semaphore.ts';
import type { Merchant } from '../merchants/service.ts';
import { AcquirerError, type Acquirer, type AuthorizationRequest } from '../payments/acquirer.ts';
import { acquirerReference } from '../payments/reference.ts';
import { PartlyCommitted, recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { SESSION_TOKEN_LIMIT } from '../sessions/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { callFunction, refusalOf } from '../storage/functions.ts';
import { parseCardPlaintext, type Card } from './card.ts';
import { createdTokenBody } from './serialize.ts';

/** What the services that open card data need: tokens here, payments too. */
export interface CardServiceDeps {
  db: Db;
  keyring: TransportKeyring;
  merchantKeys: MerchantKeys;
  ciphertextPolicy: CiphertextPolicy;
  acquirer: Acquirer;
  audit: AuditLog;
}

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

/** Where a write comes from and what it must answer, so the response is stored with the token. */
export interface TokenWrite {
  /** Card fields: the session this token counts against. */
  session?: { id: string; publishableKey: string } | undefined;
  /** Set when the request carries an Idempotency-Key. */
  claim?: IdempotencyClaim | undefined;
  /** Who is tokenizing, as the audit log names them (`redactKey`). */
  actor: string;
  source: AuditSource;
  render: (outcome: TokenOutcome) => StoredResponse;
}

/** One item of `PATCH /v1/tokens`, as the route parsed it; absent fields stay as they are. */
export interface TokenUpdate {
  token: string;
  reusable?: boolean | undefined;
  declineDuplicates?: boolean | undefined;
  /** Compact JWE of the new card (or the same number with a new expiry). */
  ciphertext?: string | undefined;
}

/** An item of a bulk update: parsed, or refused by the route before any work (`token` is then only a safe-to-echo name). */
export type BulkItem = { update: TokenUpdate } | { token: string | null; error: ApiError };

/** How one item ended, in request order: the token as the update left it, or why it was refused. */
export type BulkOutcome = { token: string; record: TokenRecord } | { token: string | null; error: ApiError };

export interface BulkWrite {
  claim?: IdempotencyClaim | undefined;
  actor: string;
  source: AuditSource;
  render: (outcomes: BulkOutcome[]) => StoredResponse;
}

/** A single-use token that is never charged expires after this. */
const SINGLE_USE_LIFETIME_MS = 30 * 60_000;
/** A CVC is only kept until the first authorization, and never longer than this. */
const CVC_LIFETIME_MS = 30 * 60_000;


/**
 * Bulk items decrypted and written at once, across all requests of this
 * process: enough to keep the crypto thread pool and the database busy, few
 * enough that a 1,000-item update cannot crowd out tokenization.
 */
const BULK_CONCURRENCY = 8;

const RECORD_COLUMNS = `token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
  cardholder_name, fingerprint, expires_at, used_at, created_at`;

/**
 * A token that can be read: not deleted, and not a single-use token that
 * expired unused (its card is destroyed). A spent single-use token stays
 * readable, with `used_at` set. (The duplicate and unique-token checks in
 * tessera_create_token look only at tokens that can still be charged.)
 */
const READABLE = `deleted_at is null and (reusable or used_at is not null or expires_at > now())`;

/**
 * Card tokens: turns card ciphertext into a token and keeps the card sealed
 * under the merchant's data key. Reads never return card data.
 */
export class TokenVault {
  readonly #db: Db;
  readonly #keyring: TransportKeyring;
  readonly #merchantKeys: MerchantKeys;
  readonly #policy: CiphertextPolicy;
  readonly #acquirer: Acquirer;
  readonly #audit: AuditLog;
  readonly #bulkSlots = new Semaphore(BULK_CONCURRENCY);

  constructor(deps: CardServiceDeps) {
    this.#db = deps.db;
    this.#acquirer = deps.acquirer;
    this.#audit = deps.audit;
    this.#keyring = deps.keyring;
    this.#merchantKeys = deps.merchantKeys;
    this.#policy = deps.ciphertextPolicy;
  }

  /**
   * Decrypts and validates the card, then writes the token, its audit
   * entries and the response in one statement (`tessera_create_token`);
   * merchants with unique tokens take a transaction, since an existing token
   * is refreshed instead.
   */
  async create(input: CreateTokenInput, write: TokenWrite): Promise<StoredResponse> {
    const plaintext = await openCardCiphertext(input.ciphertext, this.#keyring, this.#policy);
    const card = parseCardPlaintext(plaintext);
    const fingerprint = this.#merchantKeys.fingerprint(input.merchant, card.number);
    const verification = input.verify ? await this.#verify(card, write.claim) : undefined;
    // The verification was the card's authorization: its CVC is not kept after it.
    if (verification !== undefined) delete card.cvc;

    const now = new Date();
    const record: TokenRecord = {
      token: input.value ?? newId('tok'),
      reusable: input.reusable,
      customer: input.customer ?? null,
      decline_duplicates: input.declineDuplicates ?? false,
      brand: card.brand,
      last4: card.last4,
      exp_month: card.exp_month,
      exp_year: card.exp_year,
      cardholder_name: card.name ?? null,
      fingerprint,
      expires_at: input.reusable ? null : new Date(now.getTime() + SINGLE_USE_LIFETIME_MS),
      used_at: null,
      created_at: now,
    };
    const created = write.render({ token: record, existing: false, ...(verification === undefined ? {} : { verification }) });
    const sealed = this.#seal(input.merchant, record.token, card);
    const args = {
      merchant_id: input.merchant.id,
      token: record.token,
      reusable: record.reusable,
      customer: record.customer,
      decline_duplicates: record.decline_duplicates,
      brand: record.brand,
      last4: record.last4,
      exp_month: record.exp_month,
      exp_year: record.exp_year,
      cardholder_name: record.cardholder_name,
      fingerprint,
      card_sealed: sealed.card,
      data_key_version: input.merchant.data_key_version,
      cvc_sealed: sealed.cvc,
      cvc_expires_at: sealed.cvc === null ? null : new Date(now.getTime() + CVC_LIFETIME_MS),
      expires_at: record.expires_at,
      created_at: now,
      ciphertext_hash: createHash('sha256').update(input.ciphertext).digest(),
      ciphertext_keep_until: this.#ciphertextKeepUntil(now.getTime()),
      find_existing: input.merchant.unique_tokens,
      session_id: write.session?.id ?? null,
      publishable_key: write.session?.publishableKey ?? null,
      session_limit: SESSION_TOKEN_LIMIT,
      idempotency_scope: write.claim?.scope ?? null,
      idempotency_key: write.claim?.key ?? null,
      response_status: created.status,
      response_body: write.claim?.sealBody === undefined ? created.body : write.claim.sealBody(created.body),
      // Its audit entries, written by the same statement.
      actor: write.actor,
      audit_id: newId('evt'),
      verification_audit_id: verification === undefined ? null : newId('evt'),
      verification_outcome: verification?.status ?? null,
      verification_code: verification?.decline_code ?? null,
      client_ip: write.source.clientIp,
      request_id: write.source.requestId,
    };
    const createToken = (q: Queryable) => callFunction<string>(q, 'tessera_create_token', args).catch(refusal);

    if (!input.merchant.unique_tokens) {
      await createToken(this.#db);
      return created;
    }
    return this.#db.transaction(async (tx) => {
      const { rows } = await createToken(tx);
      const outcome = rows[0]!.result;
      if (!outcome.startsWith('existing:')) return created;
      const existing = await this.#refreshExisting(tx, outcome.slice('existing:'.length), input, card);
      const response = write.render({ token: existing, existing: true, ...(verification === undefined ? {} : { verification }) });
      await recordResponse(tx, write.claim, response);
      for (const entry of reuseEntries(verification)) {
        await this.#audit.record({ merchantId: input.merchant.id, actor: write.actor, token: existing.token, ...write.source, ...entry }, tx);
      }
      return response;
    });
  }

  async get(merchantId: string, token: string): Promise<TokenRecord> {
    const { rows } = await this.#db.query<TokenRecord>(
      `select ${RECORD_COLUMNS} from tokens where merchant_id = $1 and token = $2 and ${READABLE}`,
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

  /** Destroys the stored card (and CVC); the token answers 404 from then on. The audit entry is written by the same statement. */
  async delete(merchantId: string, token: string, actor: string, source: AuditSource): Promise<void> {
    const { rowCount } = await this.#db.query(
      `with deleted as (
         update tokens set card_sealed = null, cvc_sealed = null, cvc_expires_at = null, deleted_at = now(), updated_at = now()
          where merchant_id = $1 and token = $2 and ${READABLE}
          returning token
       )
       insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id)
       select $3, $1, $4, 'token.deleted', 'succeeded', token, $5, $6 from deleted`,
      [merchantId, token, newId('evt'), actor, source.clientIp, source.requestId],
    );
    if (rowCount === 0) throw new ApiError('token_not_found', { param: 'token' });
  }

  /**
   * Account verification of an existing token (`POST /v1/tokens/{token}/verify`).
   * The card fields create tokens with the publishable key, which must never
   * reach the acquirer (it would make the fields a card-testing tool), so the
   * merchant's server asks for the verification with its secret key once the
   * token exists. The CVC held with the token is used and then erased: the
   * verification is the card's first authorization. Answers 200 with the
   * token object and `verification`, as `verify: true` on creation does.
   */
  async verify(
    merchant: Merchant,
    token: string,
    ctx: { actor: string; source: AuditSource; claim: IdempotencyClaim | undefined },
  ): Promise<StoredResponse> {
    const { rows } = await this.#db.query<{
      reusable: boolean;
      used_at: Date | null;
      card_sealed: Uint8Array | null;
      cvc_sealed: Uint8Array | null;
      data_key_version: number;
      exp_month: number;
      exp_year: number;
    }>(
      `select reusable, used_at, card_sealed, cvc_sealed, data_key_version, exp_month, exp_year
         from tokens where merchant_id = $1 and token = $2 and ${READABLE}`,
      [merchant.id, token],
    );
    const row = rows[0];
    if (row === undefined || row.card_sealed === null) throw new ApiError('token_not_found', { param: 'token' });
    if (!row.reusable && row.used_at !== null) throw new ApiError('token_used', { param: 'token' });
    const { number } = JSON.parse(this.#merchantKeys.openCard(merchant, token, row.data_key_version, row.card_sealed).toString('utf8')) as {
      number: string;
    };
    const cvc = row.cvc_sealed === null ? undefined : this.#merchantKeys.openCvc(merchant, token, row.data_key_version, row.cvc_sealed);
    const verification = await this.#verify({ number, exp_month: row.exp_month, exp_year: row.exp_year, cvc }, ctx.claim);

    return this.#db.transaction(async (tx) => {
      const updated = await tx.query<TokenRecord>(
        `update tokens set cvc_sealed = null, cvc_expires_at = null, updated_at = now()
          where merchant_id = $1 and token = $2 and ${READABLE}
          returning ${RECORD_COLUMNS}`,
        [merchant.id, token],
      );
      // Deleted while the acquirer answered: the verification was voided anyway, and there is no token to report on.
      if (updated.rows[0] === undefined) throw new ApiError('token_not_found', { param: 'token' });
      const response = { status: 200, body: JSON.stringify(createdTokenBody({ token: updated.rows[0], existing: false, verification })) };
      await recordResponse(tx, ctx.claim, response);
      await this.#audit.record({ merchantId: merchant.id, actor: ctx.actor, action: 'token.verified', outcome: 'succeeded', token, ...ctx.source }, tx);
      return response;
    });
  }

  /**
   * `PATCH /v1/tokens`: each item in a statement (and so a transaction) of
   * its own, decrypted and written a few at a time. With an Idempotency-Key
   * every applied item is recorded against the claim by its own statement,
   * so a retry of a request that did not finish applies only the items that
   * were not applied; the full response is recorded once all items are done.
   */
  async updateMany(merchant: Merchant, items: readonly BulkItem[], write: BulkWrite): Promise<StoredResponse> {
    const { claim } = write;
    const applied = claim === undefined ? new Map<number, TokenRecord>() : await this.#appliedItems(claim);
    const outcomes: BulkOutcome[] = new Array(items.length);
    const pending: { position: number; update: TokenUpdate }[] = [];
    const seen = new Set<string>();
    items.forEach((item, position) => {
      if ('error' in item) {
        outcomes[position] = item;
        return;
      }
      const { update } = item;
      if (seen.has(update.token)) {
        // Items run concurrently: two updates of one token would race, so only the first counts.
        outcomes[position] = { token: update.token, error: new ApiError('parameter_invalid', { message: DUPLICATE_ITEM, param: 'token' }) };
        return;
      }
      seen.add(update.token);
      const record = applied.get(position);
      if (record !== undefined) outcomes[position] = { token: update.token, record };
      else pending.push({ position, update });
    });

    // Unknown tokens fail before their card is decrypted (the item statement checks again).
    const readable = await this.#readableTokens(merchant.id, pending.map((p) => p.update.token));
    const keys = memoizedKeys(this.#keyring);
    let committed = applied.size > 0;
    let fatal: { error: unknown } | undefined;
    await Promise.all(
      pending.map(({ position, update }) => {
        if (!readable.has(update.token)) {
          outcomes[position] = { token: update.token, error: new ApiError('token_not_found', { param: 'token' }) };
          return undefined;
        }
        return this.#bulkSlots.run(async () => {
          if (fatal !== undefined) return;
          try {
            outcomes[position] = { token: update.token, record: await this.#updateOne(merchant, update, position, write, keys) };
            committed = true;
          } catch (error) {
            if (error instanceof ApiError) outcomes[position] = { token: update.token, error };
            else fatal ??= { error };
          }
        });
      }),
    );

    try {
      // Storage failed mid-way (or a bug): the request fails, and with a key a retry finishes what is left.
      if (fatal !== undefined) throw fatal.error;
      const response = write.render(outcomes);
      await this.#finishBulk(merchant, write, outcomes, response);
      return response;
    } catch (error) {
      throw committed && claim !== undefined ? new PartlyCommitted(error) : error;
    }
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

  /** Applies one bulk item in one statement (`tessera_update_token`), audit entry and idempotency record included. */
  async #updateOne(merchant: Merchant, update: TokenUpdate, position: number, write: BulkWrite, keys: Pick<TransportKeyring, 'resolve'>): Promise<TokenRecord> {
    let card: Card | undefined;
    if (update.ciphertext !== undefined) card = parseCardPlaintext(await openCardCiphertext(update.ciphertext, keys, this.#policy));
    const sealed = card === undefined ? undefined : this.#seal(merchant, update.token, card);
    const now = Date.now();
    const { claim } = write;
    const args = {
      merchant_id: merchant.id,
      token: update.token,
      reusable: update.reusable ?? null,
      decline_duplicates: update.declineDuplicates ?? null,
      single_use_expires_at: new Date(now + SINGLE_USE_LIFETIME_MS),
      brand: card?.brand ?? null,
      last4: card?.last4 ?? null,
      exp_month: card?.exp_month ?? null,
      exp_year: card?.exp_year ?? null,
      cardholder_name: card?.name ?? null,
      fingerprint: card === undefined ? null : this.#merchantKeys.fingerprint(merchant, card.number),
      card_sealed: sealed?.card ?? null,
      data_key_version: merchant.data_key_version,
      cvc_sealed: sealed?.cvc ?? null,
      cvc_expires_at: sealed === undefined || sealed.cvc === null ? null : new Date(now + CVC_LIFETIME_MS),
      ciphertext_hash: update.ciphertext === undefined ? null : createHash('sha256').update(update.ciphertext).digest(),
      ciphertext_keep_until: update.ciphertext === undefined ? null : this.#ciphertextKeepUntil(now),
      unique_tokens: merchant.unique_tokens,
      audit_id: newId('evt'),
      actor: write.actor,
      idempotency_scope: claim?.scope ?? null,
      idempotency_key: claim?.key ?? null,
      idempotency_reference: claim?.reference ?? null,
      position,
      client_ip: write.source.clientIp,
      request_id: write.source.requestId,
    };
    try {
      const { rows } = await callFunction<string>(this.#db, 'tessera_update_token', args);
      return tokenRecordFromJson(rows[0]!.result);
    } catch (error) {
      // A retry racing the request it retries: the other one applied this item, and its record is the answer.
      if (claim !== undefined && refusalOf(error)?.refusal === 'item_already_applied') {
        const record = (await this.#appliedItems(claim, position)).get(position);
        if (record !== undefined) return record;
      }
      return updateRefusal(error);
    }
  }

  /** Items of a bulk update already applied under this claim, by position. */
  async #appliedItems(claim: IdempotencyClaim, position?: number): Promise<Map<number, TokenRecord>> {
    const { rows } = await this.#db.query<{ position: number; token_record: string }>(
      `select position, token_record from idempotency_bulk_items
        where scope = $1 and key = $2 and reference = $3 and token_record is not null and ($4::integer is null or position = $4)`,
      [claim.scope, claim.key, claim.reference, position ?? null],
    );
    return new Map(rows.map((row) => [row.position, tokenRecordFromJson(row.token_record)]));
  }

  async #readableTokens(merchantId: string, tokens: string[]): Promise<Set<string>> {
    if (tokens.length === 0) return new Set();
    const { rows } = await this.#db.query<{ token: string }>(
      `select token from tokens where merchant_id = $1 and token = any($2::text[]) and ${READABLE}`,
      [merchantId, tokens],
    );
    return new Set(rows.map((row) => row.token));
  }

  /**
   * The refused items go into the audit log (the applied ones are there
   * already); with a key, the response is recorded and the per-item records,
   * now part of it, are dropped — all in one transaction.
   */
  async #finishBulk(merchant: Merchant, write: BulkWrite, outcomes: BulkOutcome[], response: StoredResponse): Promise<void> {
    const refused = outcomes.filter((o): o is { token: string | null; error: ApiError } => 'error' in o);
    const recordRefusals = async (q: Queryable) => {
      if (refused.length === 0) return;
      await q.query(
        `insert into audit_events (id, merchant_id, actor, action, outcome, code, token, client_ip, request_id)
         select e.id, $1, $2, 'token.updated', 'failed', e.code, e.token, $6, $7
           from unnest($3::text[], $4::text[], $5::text[]) as e(id, code, token)`,
        [
          merchant.id,
          write.actor,
          refused.map(() => newId('evt')),
          refused.map((o) => o.error.code),
          refused.map((o) => o.token),
          write.source.clientIp,
          write.source.requestId,
        ],
      );
    };
    const { claim } = write;
    if (claim === undefined) return recordRefusals(this.#db);
    await this.#db.transaction(async (tx) => {
      await recordResponse(tx, claim, response);
      await tx.query('delete from idempotency_bulk_items where scope = $1 and key = $2', [claim.scope, claim.key]);
      await recordRefusals(tx);
    });
  }

  #ciphertextKeepUntil(now: number): Date {
    // Kept past the longest time a JWE is accepted, so a replay is always caught.
    return new Date(now + (this.#policy.maxAgeSeconds + this.#policy.maxFutureSeconds + 60) * 1000);
  }

  /** Unique tokens: the card's live token, with its expiry, name, address and CVC refreshed from this tokenization. */
  async #refreshExisting(tx: Queryable, token: string, input: CreateTokenInput, card: Card): Promise<TokenRecord> {
    const sealed = this.#seal(input.merchant, token, card);
    const { rows } = await tx.query<TokenRecord>(
      `update tokens set
         exp_month = $3, exp_year = $4,
         cardholder_name = coalesce($5, cardholder_name),
         card_sealed = $6, data_key_version = $7,
         cvc_sealed = coalesce($8, cvc_sealed),
         cvc_expires_at = case when $8::bytea is null then cvc_expires_at else $9 end,
         reusable = reusable or $10,
         expires_at = case when reusable or $10 then null else expires_at end,
         decline_duplicates = decline_duplicates or $11,
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
        new Date(Date.now() + CVC_LIFETIME_MS),
        input.reusable,
        input.declineDuplicates ?? false,
      ],
    );
    return rows[0]!;
  }

  /**
   * Account verification: authorizes a small amount and voids it. The
   * reference is derived from the Idempotency-Key, so a retry after an
   * acquirer error finds the first authorization instead of making another.
   */
  async #verify(card: AuthorizationRequest['card'], claim: IdempotencyClaim | undefined): Promise<Verification> {
    const reference = acquirerReference('ver', claim);
    try {
      const outcome = await this.#acquirer.authorize({ reference, card, ...VERIFICATION, initiator: 'customer', recurring: false });
      if (!outcome.approved) return { status: 'failed', decline_code: outcome.declineCode };
      await this.#acquirer.void(reference);
      return { status: 'succeeded', decline_code: null };
    } catch (error) {
      if (error instanceof AcquirerError) throw new ApiError('acquirer_error', { cause: error });
      throw error;
    }
  }

  #seal(merchant: Merchant, token: string, card: Card): { card: Buffer; cvc: Buffer | null } {
    const stored = JSON.stringify({ number: card.number, ...(card.postal_code === undefined ? {} : { postal_code: card.postal_code }) });
    return {
      card: this.#merchantKeys.sealCard(merchant, token, Buffer.from(stored, 'utf8')),
      cvc: card.cvc === undefined ? null : this.#merchantKeys.sealCvc(merchant, token, card.cvc),
    };
  }
}

/** Turns a refusal raised by `tessera_update_token` into its API error; anything else passes through. */
function updateRefusal(error: unknown): never {
  const refused = refusalOf(error)?.refusal;
  switch (refused) {
    case 'token_not_found':
    case 'token_used':
      throw new ApiError(refused, { param: 'token' });
    case 'replayed_ciphertext':
    case 'duplicate_card':
      throw new ApiError(refused, { param: 'card' });
    default:
      throw error;
  }
}

const DUPLICATE_ITEM = 'This token appears earlier in the same request; a token can be updated once per request.';

/** The token record a bulk item left, as `tessera_update_token` returns (and the idempotency record keeps) it. */
function tokenRecordFromJson(text: string): TokenRecord {
  const raw = JSON.parse(text) as Omit<TokenRecord, 'created_at' | 'used_at' | 'expires_at'> & {
    created_at: string;
    used_at: string | null;
    expires_at: string | null;
  };
  const date = (value: string | null) => (value === null ? null : new Date(value));
  return { ...raw, created_at: new Date(raw.created_at), used_at: date(raw.used_at), expires_at: date(raw.expires_at) };
}

/** Transport key lookups for one bulk request: one database read per kid, not per item. */
function memoizedKeys(keyring: TransportKeyring): Pick<TransportKeyring, 'resolve'> {
  const keys = new Map<string, Promise<KeyObject | undefined>>();
  return {
    resolve(kid, now) {
      let key = keys.get(kid);
      if (key === undefined) {
        key = keyring.resolve(kid, now);
        keys.set(kid, key);
      }
      return key;
    },
  };
}

/** Turns a refusal raised by `tessera_create_token` into its API error; anything else passes through. */
function refusal(error: unknown): never {
  const refused = refusalOf(error);
  switch (refused?.refusal) {
    case 'session_exhausted': {
      const secondsLeft = Number(refused.detail);
      throw new ApiError('rate_limited', {
        message: `This session has created its ${SESSION_TOKEN_LIMIT} tokens; open a new session.`,
        headers: { 'Retry-After': String(Number.isFinite(secondsLeft) && secondsLeft > 0 ? secondsLeft : 1) },
      });
    }
    case 'session_invalid':
      throw new ApiError('session_invalid', { param: 'session' });
    case 'token_value_taken':
      throw new ApiError('token_value_taken', { param: 'value' });
    case 'replayed_ciphertext':
    case 'duplicate_card':
      throw new ApiError(refused.refusal, { param: 'card' });
    default:
      throw error;
  }
}

/** Account verification: a small authorization, voided at once. */
const VERIFICATION = { amount: 100, currency: 'EUR' } as const;

/** The audit entries of a unique token returned again: the reuse, and the verification if one ran. */
function reuseEntries(verification: Verification | undefined): Pick<AuditEntry, 'action' | 'outcome' | 'code'>[] {
  const entries: Pick<AuditEntry, 'action' | 'outcome' | 'code'>[] = [{ action: 'token.reused', outcome: 'succeeded' }];
  if (verification !== undefined) {
    entries.push({ action: 'token.verified', outcome: verification.status, code: verification.decline_code ?? undefined });
  }
  return entries;
}
