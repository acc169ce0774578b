import type { AuditLog, AuditSource } from '../audit/audit.ts';
import { findBatch, processedItems } from '../batches/store.ts';
import { VaultError } from '../errors.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { enqueueJob } from '../jobs/index.ts';
import { newId, randomBase62 } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import type { Db } from '../storage/db.ts';
import type { PaymentBatchInput } from './schema.ts';
import { paymentBatchBody, type PaymentBatchRecord, type PaymentBatchResultRecord } from './serialize.ts';

/** The job that works through a batch's items (processor.ts). */
export const PAYMENT_BATCH_JOB = 'payment_batch.process';

/** Each attempt goes on where the last stopped, so a long outage only delays the batch. */
export const PAYMENT_BATCH_JOB_ATTEMPTS = 200;

export const BATCH_COLUMNS = 'id, merchant_id, correlation_id, status, total, processed, succeeded, failed, created_at, completed_at';

const TABLES = { batches: 'payment_batches', items: 'payment_batch_items' } as const;
const RESULT_COLUMNS = 'item_index, op, reference, state, result_payment, result_status, refund, error_code, error_message, error_param, decline_code';

/**
 * Payment batches, as the API sees them: accepted whole (the batch, its
 * items and its job in one transaction), then read while the job works
 * through them.
 */
export class PaymentBatches {
  readonly #db: Db;
  readonly #audit: AuditLog;

  constructor(deps: { db: Db; audit: AuditLog }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
  }

  async create(
    merchant: Merchant,
    input: PaymentBatchInput,
    write: { claim: IdempotencyClaim | undefined; actor: string; source: AuditSource },
  ): Promise<StoredResponse> {
    const id = newId('pbat');
    const { items } = input;
    const column = <T>(pick: (item: PaymentBatchInput['items'][number]) => T | undefined) => items.map((item) => pick(item) ?? null);
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<PaymentBatchRecord>(
        `insert into payment_batches (id, merchant_id, correlation_id, total, actor, client_ip, request_id)
         values ($1, $2, $3, $4, $5, $6, $7)
         returning ${BATCH_COLUMNS}`,
        [id, merchant.id, input.correlation_id ?? null, items.length, write.actor, write.source.clientIp, write.source.requestId],
      );
      await tx.query(
        `insert into payment_batch_items (batch_id, item_index, op, payment, token, amount, currency, reference, agreement, attempt_reference)
         select $1, i.* from unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[])
           as i(item_index, op, payment, token, amount, currency, reference, agreement, attempt_reference)`,
        [
          id,
          items.map((_, index) => index),
          items.map((item) => item.op),
          column((item) => ('payment' in item ? item.payment : undefined)),
          column((item) => ('token' in item ? item.token : undefined)),
          column((item) => ('amount' in item ? item.amount : undefined)),
          column((item) => ('currency' in item ? item.currency : undefined)),
          column((item) => item.reference),
          column((item) => ('agreement' in item ? item.agreement : undefined)),
          items.map(() => randomBase62(16)),
        ],
      );
      await enqueueJob(tx, { kind: PAYMENT_BATCH_JOB, key: id, payload: { batch: id }, maxAttempts: PAYMENT_BATCH_JOB_ATTEMPTS });
      const response = { status: 202, body: JSON.stringify(paymentBatchBody(rows[0]!)) };
      await recordResponse(tx, write.claim, response);
      // Last: an audit entry locks its merchant's chain until commit.
      await this.#audit.record({ merchantId: merchant.id, actor: write.actor, action: 'payment_batch.created', outcome: 'succeeded', ...write.source }, tx);
      return response;
    });
  }

  /** A batch of this merchant; another merchant's is `payment_batch_not_found`, as an unknown one. */
  get(merchantId: string, id: string): Promise<PaymentBatchRecord> {
    return findBatch(this.#db, TABLES, BATCH_COLUMNS, merchantId, id, () => new VaultError('payment_batch_not_found', { param: 'id' }));
  }

  /** The outcomes of processed items in item order, after the index `startingAfter`; pending items are not listed yet. */
  async results(merchantId: string, id: string, page: { limit: number; startingAfter: number | undefined }): Promise<{ results: PaymentBatchResultRecord[]; hasMore: boolean }> {
    await this.get(merchantId, id);
    return processedItems<PaymentBatchResultRecord>(this.#db, TABLES, RESULT_COLUMNS, id, page);
  }
}
