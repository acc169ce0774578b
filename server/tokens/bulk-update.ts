import type { KeyObject } from 'node:crypto';
import type { AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { PartlyCommitted, recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { openCardCiphertext, replayKey, replayRecordUntil } from '../keys/card-ciphertext.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { newId } from '../lib/ids.ts';
import { Semaphore } from '../lib/semaphore.ts';
import type { Merchant } from '../merchants/service.ts';
import type { Queryable } from '../storage/db.ts';
import { callFunction, Composite, refusalOf } from '../storage/functions.ts';
import { parseCardPlaintext } from '../cards/card.ts';
import { cardDetails, sealDetails, type CardServiceDeps } from '../cards/deps.ts';
import { READABLE } from '../cards/liveness.ts';
import { SINGLE_USE_LIFETIME_MS, tokenRecordOf, type TokenRecord } from '../cards/records.ts';

/** One item of `PATCH /v1/tokens`, as the route parsed it; absent fields stay as they are. */
export interface TokenUpdate {
  token: string;
  reusable?: boolean | undefined;
  declineDuplicates?: boolean | undefined;
  /** Compact JWE of the new card (or the same number with a new expiry). */
  ciphertext?: string | undefined;
}

/** An item of a bulk update: parsed, or refused by the route before any work (`token` is then only a safe-to-echo name). */
export type BulkItem = { update: TokenUpdate } | { token: string | null; error: VaultError };

/** How one item ended, in request order: the token as the update left it, or why it was refused. */
export type BulkOutcome = { token: string; record: TokenRecord } | { token: string | null; error: VaultError };

export interface BulkWrite {
  claim?: IdempotencyClaim | undefined;
  actor: string;
  source: AuditSource;
  render: (outcomes: BulkOutcome[]) => StoredResponse;
}

/**
 * Bulk items decrypted and written at once, across all requests of this
 * process: enough to keep the crypto thread pool and the database busy, few
 * enough that a 1,000-item update cannot crowd out tokenization.
 */
const BULK_CONCURRENCY = 8;

const DUPLICATE_ITEM = 'This token appears earlier in the same request; a token can be updated once per request.';

/**
 * `PATCH /v1/tokens`: each item in a statement (and so a transaction) of its
 * own, decrypted and written a few at a time. With an Idempotency-Key every
 * applied item is recorded against the claim by its own statement, so a
 * retry of a request that did not finish applies only the items that were
 * not applied; the full response is recorded once all items are done.
 */
export class BulkTokenUpdate {
  readonly #deps: CardServiceDeps;
  readonly #slots = new Semaphore(BULK_CONCURRENCY);

  constructor(deps: CardServiceDeps) {
    this.#deps = deps;
  }

  async run(merchant: Merchant, items: readonly BulkItem[], write: BulkWrite): Promise<StoredResponse> {
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
        outcomes[position] = { token: update.token, error: new VaultError('parameter_invalid', { message: DUPLICATE_ITEM, param: 'token' }) };
        return;
      }
      seen.add(update.token);
      const record = applied.get(position);
      if (record !== undefined) outcomes[position] = { token: update.token, record };
      else pending.push({ position, update });
    });

    // Unknown tokens fail before their card is decrypted (the item statement checks again).
    const readable = await this.#readableTokens(merchant.id, pending.map((p) => p.update.token));
    const keys = memoizedKeys(this.#deps.keyring);
    let committed = applied.size > 0;
    let fatal: { error: unknown } | undefined;
    await Promise.all(
      pending.map(({ position, update }) => {
        if (!readable.has(update.token)) {
          outcomes[position] = { token: update.token, error: new VaultError('token_not_found', { param: 'token' }) };
          return undefined;
        }
        return this.#slots.run(async () => {
          if (fatal !== undefined) return;
          try {
            outcomes[position] = { token: update.token, record: await this.#updateOne(merchant, update, position, write, keys) };
            committed = true;
          } catch (error) {
            if (error instanceof VaultError) outcomes[position] = { token: update.token, error };
            else fatal ??= { error };
          }
        });
      }),
    );

    try {
      // Storage failed mid-way (or a bug): the request fails, and with a key a retry finishes what is left.
      if (fatal !== undefined) throw fatal.error;
      const response = write.render(outcomes);
      await this.#finish(merchant, write, outcomes, response);
      return response;
    } catch (error) {
      throw committed && claim !== undefined ? new PartlyCommitted(error) : error;
    }
  }

  /** Applies one item in one statement (`tessera_update_token`), audit entry and idempotency record included. */
  async #updateOne(merchant: Merchant, update: TokenUpdate, position: number, write: BulkWrite, keys: Pick<TransportKeyring, 'resolve'>): Promise<TokenRecord> {
    const deps = this.#deps;
    const card = update.ciphertext === undefined ? undefined : parseCardPlaintext(await openCardCiphertext(update.ciphertext, keys, deps.ciphertextPolicy));
    const now = Date.now();
    const sealed = card === undefined ? undefined : await sealDetails(deps, merchant, { token: update.token }, card, now);
    const { claim } = write;
    const args = {
      merchant_id: merchant.id,
      token: update.token,
      reusable: update.reusable ?? null,
      decline_duplicates: update.declineDuplicates ?? null,
      single_use_expires_at: new Date(now + SINGLE_USE_LIFETIME_MS),
      card: card === undefined || sealed === undefined ? new Composite('tessera_card_details', {}) : cardDetails(card, deps.merchantKeys.fingerprint(merchant, card.number), sealed),
      ciphertext_hash: update.ciphertext === undefined ? null : replayKey(update.ciphertext),
      ciphertext_keep_until: update.ciphertext === undefined ? null : replayRecordUntil(deps.ciphertextPolicy, now),
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
      const { rows } = await callFunction<string>(deps.db, 'tessera_update_token', args);
      return tokenRecordOf(rows[0]!.result);
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
    const { rows } = await this.#deps.db.query<{ position: number; token_record: string }>(
      `select position, token_record from idempotency_bulk_items
        where scope = $1 and key = $2 and reference = $3 and token_record is not null and ($4::integer is null or position = $4)`,
      [claim.scope, claim.key, claim.reference, position ?? null],
    );
    return new Map(rows.map((row) => [row.position, tokenRecordOf(row.token_record)]));
  }

  async #readableTokens(merchantId: string, tokens: string[]): Promise<Set<string>> {
    if (tokens.length === 0) return new Set();
    const { rows } = await this.#deps.db.query<{ token: string }>(
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
  async #finish(merchant: Merchant, write: BulkWrite, outcomes: BulkOutcome[], response: StoredResponse): Promise<void> {
    const refused = outcomes.filter((o): o is { token: string | null; error: VaultError } => 'error' in o);
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
    if (claim === undefined) return recordRefusals(this.#deps.db);
    await this.#deps.db.transaction(async (tx) => {
      await recordResponse(tx, claim, response);
      await tx.query('delete from idempotency_bulk_items where scope = $1 and key = $2', [claim.scope, claim.key]);
      // Last: an audit entry locks its merchant's chain until commit.
      await recordRefusals(tx);
    });
  }
}

/** Turns a refusal raised by `tessera_update_token` into its API error; anything else passes through. */
function updateRefusal(error: unknown): never {
  const refused = refusalOf(error)?.refusal;
  switch (refused) {
    case 'token_not_found':
    case 'token_used':
      throw new VaultError(refused, { param: 'token' });
    case 'replayed_ciphertext':
    case 'duplicate_card':
      throw new VaultError(refused, { param: 'card' });
    default:
      throw error;
  }
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
