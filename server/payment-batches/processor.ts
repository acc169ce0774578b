import type { Logger } from 'pino';
import { z } from 'zod';
import type { Acquirer } from '../acquirer/acquirer.ts';
import type { AuditLog } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import type { RequestsInFlight } from '../http/in-flight.ts';
import type { Job, JobHandler } from '../jobs/index.ts';
import type { Merchant, MerchantDirectory } from '../merchants/service.ts';
import type { PaymentContext, PaymentRecord, PaymentService } from '../payments/service.ts';
import type { Agreement } from '../payments/schema.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { applyChanges, type ChangeItem } from './changes.ts';
import type { PaymentBatchRecord } from './serialize.ts';
import { BATCH_COLUMNS, PAYMENT_BATCH_JOB } from './service.ts';

export interface PaymentBatchProcessorDeps {
  db: Db;
  log: Logger;
  payments: PaymentService;
  merchants: MerchantDirectory;
  audit: AuditLog;
  /** Capture, void and refund items go to the acquirer from the batch's own chunks (changes.ts). */
  acquirer: Acquirer;
  /** This process's API requests in flight: on PGlite a chunk's transaction waits (a little) for them. */
  traffic?: RequestsInFlight | undefined;
}

/**
 * Items read per query. Captures, voids and refunds among them are applied a
 * run of consecutive ones per transaction; a charge is its own. On PGlite a
 * transaction holds the one database connection, so a chunk there stays
 * short for the requests waiting behind it; on PostgreSQL other work goes on
 * beside it.
 */
const CHUNK_ITEMS = { pglite: 100, postgres: 250 } as const;

interface BatchRow extends PaymentBatchRecord {
  actor: string;
  client_ip: string;
  request_id: string;
}

interface PendingItem {
  item_index: number;
  op: 'capture' | 'void' | 'refund' | 'charge';
  payment: string | null;
  token: string | null;
  amount: number | null;
  currency: string | null;
  reference: string | null;
  agreement: string | null;
  attempt_reference: string;
}

/**
 * The `payment_batch.process` job: works through the items in index order.
 * A run of consecutive captures, voids and refunds is applied a chunk per
 * transaction (changes.ts): each item by the rules, acquirer call and events
 * of its own request, and the chunk's results and the batch's counts commit
 * with its changes. A charge of a saved token goes through the payment
 * service as its request would, its result and the batch's counts written
 * by the payment's own transaction (`along`). So a vault killed mid-batch
 * resumes with the items still pending and never repeats one: an item is
 * pending until its operation commits. A charge carries the item's own
 * acquirer reference, drawn at acceptance, so one retried after a crash
 * between the acquirer's answer and the commit gets the same authorization.
 * An item's refusal is its result and never stops the batch; once none is
 * pending, the batch completes with its event.
 */
export function paymentBatchJob(deps: PaymentBatchProcessorDeps): JobHandler<{ batch: string }> {
  return {
    kind: PAYMENT_BATCH_JOB,
    payload: z.object({ batch: z.string() }),
    concurrency: 1,
    run: (job) => new BatchRun(deps, job).run(),
  };
}

class BatchRun {
  readonly #deps: PaymentBatchProcessorDeps;
  readonly #job: Job<{ batch: string }>;

  constructor(deps: PaymentBatchProcessorDeps, job: Job<{ batch: string }>) {
    this.#deps = deps;
    this.#job = job;
  }

  async run(): Promise<void> {
    const { db } = this.#deps;
    const { rows } = await db.query<BatchRow>(`select ${BATCH_COLUMNS}, actor, client_ip, request_id from payment_batches where id = $1`, [this.#job.payload.batch]);
    const batch = rows[0];
    if (batch === undefined || batch.status === 'completed') return db.transaction((tx) => this.#job.complete(tx));
    const merchant = await this.#deps.merchants.byId(batch.merchant_id);
    if (merchant === undefined) throw new Error(`payment batch ${batch.id}: its merchant is gone`);
    await db.query(`update payment_batches set status = 'processing', updated_at = now() where id = $1 and status = 'pending'`, [batch.id]);
    // Thousands of rows just arrived: fresh statistics keep the planner on the primary key (see token batches).
    await db.query('analyze payment_batch_items');

    const chunkItems = CHUNK_ITEMS[db.kind];
    let after = -1;
    for (;;) {
      const items = await this.#pending(batch.id, after, chunkItems);
      if (items.length === 0) break;
      for (const run of runsOf(items)) {
        this.#job.signal.throwIfAborted();
        if (run.charges === undefined) {
          await this.#changes(batch, run.changes);
          continue;
        }
        for (const item of run.charges) {
          this.#job.signal.throwIfAborted();
          await this.#charge(batch, merchant, item);
        }
      }
      after = items.at(-1)!.item_index;
    }
    await this.#finish(batch);
  }

  async #pending(batchId: string, after: number, limit: number): Promise<PendingItem[]> {
    const { rows } = await this.#deps.db.query<PendingItem>(
      `select item_index, op, payment, token, amount::float8 as amount, currency, reference, agreement, attempt_reference
         from payment_batch_items
        where batch_id = $1 and state = 'pending' and item_index > $2
        order by item_index
        limit $3`,
      [batchId, after, limit],
    );
    return rows;
  }

  /** A run of captures, voids and refunds, in one transaction. */
  async #changes(batch: BatchRow, items: ChangeItem[]): Promise<void> {
    const { db, acquirer, audit, traffic } = this.#deps;
    // PGlite runs one transaction at a time: a request arriving now would wait for the whole chunk.
    if (db.kind === 'pglite') await traffic?.whenIdle();
    const by = { batchId: batch.id, merchantId: batch.merchant_id, actor: batch.actor, clientIp: batch.client_ip, requestId: batch.request_id };
    await db.transaction((tx) => applyChanges(tx, { acquirer, audit }, by, items));
  }

  /** A merchant-initiated charge of a saved token, through the payment service as its request would go. */
  async #charge(batch: BatchRow, merchant: Merchant, item: PendingItem): Promise<void> {
    const ctx: PaymentContext = {
      merchant,
      actor: batch.actor,
      source: { clientIp: batch.client_ip, requestId: batch.request_id },
      // Not an Idempotency-Key record: the charge's acquirer reference (its payment id), fixed at acceptance.
      claim: { scope: `pbat:${batch.id}`, key: String(item.item_index), reference: item.attempt_reference },
      along: async (tx, payment) => {
        await this.#succeeded(tx, batch.id, item, payment);
        return [];
      },
    };
    try {
      await this.#deps.payments.create(
        {
          token: item.token!,
          amount: item.amount!,
          currency: item.currency!,
          capture: true,
          reference: item.reference ?? undefined,
          recurring: item.agreement === 'subscription' || item.agreement === 'installment',
          cvc: undefined,
          // A card on file charged without the shopper: it needs the token's stored-credential chain (422 stored_credential_required).
          initiator: 'merchant',
          agreement: (item.agreement ?? 'unscheduled') as Agreement,
          setup_future_usage: false,
          channel: 'ecommerce',
        },
        ctx,
      );
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      await this.#deps.db.transaction((tx) => record(tx, batch.id, item.item_index, { state: 'failed', error }));
    }
  }

  /** In the operation's transaction: its result and the batch's counts commit with it, or neither does. */
  async #succeeded(tx: Queryable, batchId: string, item: PendingItem, payment: PaymentRecord): Promise<void> {
    if (payment.status === 'declined') {
      const error = new VaultError('card_declined', { extra: { decline_code: payment.decline_code } });
      return record(tx, batchId, item.item_index, { state: 'failed', error, payment: payment.id, declineCode: payment.decline_code });
    }
    await record(tx, batchId, item.item_index, { state: 'succeeded', payment: payment.id, status: payment.status });
  }

  /** Completes the batch once no item is pending: its status, its event and the job's completion commit together. */
  async #finish(batch: BatchRow): Promise<void> {
    await this.#deps.db.transaction(async (tx) => {
      await tx.query('select 1 from payment_batches where id = $1 for update', [batch.id]);
      const { rows: left } = await tx.query<{ pending: number }>(
        `select count(*)::integer as pending from payment_batch_items where batch_id = $1 and state = 'pending'`,
        [batch.id],
      );
      if ((left[0]?.pending ?? 0) > 0) throw new Error(`payment batch ${batch.id}: items are still pending at its end`);
      const { rows } = await tx.query<PaymentBatchRecord>(
        `update payment_batches set status = 'completed', completed_at = now(), updated_at = now()
          where id = $1 and status <> 'completed'
          returning ${BATCH_COLUMNS}`,
        [batch.id],
      );
      const completed = rows[0];
      if (completed !== undefined) {
        await this.#deps.audit.record(
          {
            merchantId: batch.merchant_id,
            actor: batch.actor,
            action: 'payment_batch.completed',
            outcome: 'succeeded',
            clientIp: batch.client_ip,
            requestId: batch.request_id,
            event: { type: 'payment_batch.completed', data: completed },
          },
          tx,
        );
      }
      await this.#job.complete(tx);
    });
    this.#deps.log.info({ payment_batch: batch.id }, 'payment batch completed');
  }
}

type Outcome =
  | { state: 'succeeded'; payment: string; status: string }
  | { state: 'failed'; error: VaultError; payment?: string; declineCode?: string | null };

/**
 * Writes a charge item's result and counts it on its batch. An item already
 * processed (by a run whose lease ran out) refuses, rolling back the
 * operation that came with it: nothing is done twice.
 */
async function record(tx: Queryable, batchId: string, index: number, outcome: Outcome): Promise<void> {
  const failed = outcome.state === 'failed' ? outcome : undefined;
  const updated = await tx.query(
    `update payment_batch_items
        set state = $3, result_payment = $4, result_status = $5,
            error_code = $6, error_message = $7, error_param = $8, decline_code = $9, processed_at = now()
      where batch_id = $1 and item_index = $2 and state = 'pending'`,
    [
      batchId,
      index,
      outcome.state,
      outcome.payment ?? null,
      outcome.state === 'succeeded' ? outcome.status : null,
      failed?.error.code ?? null,
      failed?.error.message ?? null,
      failed?.error.param ?? null,
      failed?.declineCode ?? null,
    ],
  );
  if (updated.rowCount !== 1) throw new Error(`payment batch ${batchId}: item ${index} was already processed`);
  await tx.query(
    `update payment_batches
        set processed = processed + 1, succeeded = succeeded + $2, failed = failed + $3, updated_at = now()
      where id = $1`,
    [batchId, outcome.state === 'succeeded' ? 1 : 0, outcome.state === 'failed' ? 1 : 0],
  );
}

/** A page's items as runs in index order: consecutive captures, voids and refunds together, charges apart. */
function runsOf(items: readonly PendingItem[]): ({ changes: ChangeItem[]; charges?: undefined } | { charges: PendingItem[] })[] {
  const runs: ({ changes: ChangeItem[]; charges?: undefined } | { charges: PendingItem[] })[] = [];
  for (const item of items) {
    const last = runs.at(-1);
    if (item.op === 'charge') {
      if (last?.charges === undefined) runs.push({ charges: [item] });
      else last.charges.push(item);
      continue;
    }
    const change: ChangeItem = { item_index: item.item_index, op: item.op, payment: item.payment!, amount: item.amount };
    if (last === undefined || last.charges !== undefined) runs.push({ changes: [change] });
    else last.changes.push(change);
  }
  return runs;
}
