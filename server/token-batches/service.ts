import type { AuditLog, AuditSource } from '../audit/audit.ts';
import { findBatch, processedItems } from '../batches/store.ts';
import { VaultError } from '../errors.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { enqueueJob } from '../jobs/index.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import type { Db } from '../storage/db.ts';
import type { TokenBatchInput } from './schema.ts';
import { tokenBatchBody, type TokenBatchRecord, type TokenBatchResultRecord } from './serialize.ts';

/** The job that tokenizes a batch's items (processor.ts). */
export const TOKEN_BATCH_JOB = 'token_batch.process';

/**
 * Attempts of a batch's job before it is dead. Each attempt goes on where the
 * last one stopped, so a long outage only delays the batch; the default
 * backoff tops out at an hour between attempts.
 */
export const TOKEN_BATCH_JOB_ATTEMPTS = 200;

export const BATCH_COLUMNS = `id, merchant_id, correlation_id, status, total, processed, succeeded, failed, created_at, completed_at, network_tokens,
  (select json_object_agg(status, n) from (select status, count(*)::integer as n from network_tokens where batch_id = token_batches.id group by status) s)
    as network_token_counts`;

const TABLES = { batches: 'token_batches', items: 'token_batch_items' } as const;
const RESULT_COLUMNS = 'item_index, reference, state, token, brand, last4, exp_month, exp_year, error_code, error_message, error_param';

/**
 * Token batches, as the API sees them: accepted whole (the batch, its items
 * and its job in one transaction), then read while the job works through
 * them.
 */
export class TokenBatches {
  readonly #db: Db;
  readonly #audit: AuditLog;

  constructor(deps: { db: Db; audit: AuditLog }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
  }

  /**
   * Accepts a validated batch: its row, its items (their JWEs kept until
   * each is processed), its job, the idempotent answer and the audit entry
   * commit together, so an accepted batch is never lost and a refused one
   * leaves nothing.
   */
  async create(
    merchant: Merchant,
    input: TokenBatchInput,
    write: { claim: IdempotencyClaim | undefined; actor: string; source: AuditSource },
  ): Promise<StoredResponse> {
    const id = newId('tbat');
    const { items } = input;
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<TokenBatchRecord>(
        `insert into token_batches (id, merchant_id, correlation_id, total, actor, client_ip, request_id, network_tokens)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         returning ${BATCH_COLUMNS}`,
        [
          id,
          merchant.id,
          input.correlation_id ?? null,
          items.length,
          write.actor,
          write.source.clientIp,
          write.source.requestId,
          // A merchant with network tokens on gets them for a batch's tokens too, as for every reusable token.
          input.network_tokens || merchant.network_tokens,
        ],
      );
      await tx.query(
        `insert into token_batch_items (batch_id, item_index, card, reference, customer, reusable, decline_duplicates)
         select $1, i.item_index, i.card, i.reference, i.customer, i.reusable, i.decline_duplicates
           from unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::boolean[])
             as i(item_index, card, reference, customer, reusable, decline_duplicates)`,
        [
          id,
          items.map((_, index) => index),
          items.map((item) => item.card),
          items.map((item) => item.reference ?? null),
          items.map((item) => item.customer ?? null),
          items.map((item) => item.reusable),
          items.map((item) => item.decline_duplicates),
        ],
      );
      await enqueueJob(tx, { kind: TOKEN_BATCH_JOB, key: id, payload: { batch: id }, maxAttempts: TOKEN_BATCH_JOB_ATTEMPTS });
      const response = { status: 202, body: JSON.stringify(tokenBatchBody(rows[0]!)) };
      await recordResponse(tx, write.claim, response);
      // Last: an audit entry locks its merchant's chain until commit.
      await this.#audit.record(
        { merchantId: merchant.id, actor: write.actor, action: 'token_batch.created', outcome: 'succeeded', ...write.source },
        tx,
      );
      return response;
    });
  }

  /** A batch of this merchant; another merchant's is `token_batch_not_found`, as an unknown one. */
  get(merchantId: string, id: string): Promise<TokenBatchRecord> {
    return findBatch(this.#db, TABLES, BATCH_COLUMNS, merchantId, id, () => new VaultError('token_batch_not_found'));
  }

  /** The outcomes of a batch's processed items in item order, after the index `startingAfter` (`processedItems`). */
  async results(
    merchantId: string,
    id: string,
    page: { limit: number; startingAfter: number | undefined },
  ): Promise<{ batch: TokenBatchRecord; results: TokenBatchResultRecord[]; hasMore: boolean }> {
    const batch = await this.get(merchantId, id);
    return { batch, ...(await processedItems<TokenBatchResultRecord>(this.#db, TABLES, RESULT_COLUMNS, id, page)) };
  }
}
