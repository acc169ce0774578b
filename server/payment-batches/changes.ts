import { AcquirerError, type Acquirer } from '../acquirer/acquirer.ts';
import type { AuditEntry, AuditLog } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import { captureAmount, checkVoidable, refundAmount, statusAfterRefund } from '../payments/changes.ts';
import { COLUMNS, type PaymentRecord } from '../payments/service.ts';
import type { Queryable } from '../storage/db.ts';
import { callFunction } from '../storage/functions.ts';

/** A capture, void or refund item of a batch, still pending. */
export interface ChangeItem {
  item_index: number;
  op: 'capture' | 'void' | 'refund';
  payment: string;
  amount: number | null;
}

/** Who the batch's operations are recorded as: the request that submitted it. */
export interface BatchAuthor {
  batchId: string;
  merchantId: string;
  actor: string;
  clientIp: string;
  requestId: string;
}

type Action = 'payment.captured' | 'payment.voided' | 'payment.refunded';
const ACTIONS = { capture: 'payment.captured', void: 'payment.voided', refund: 'payment.refunded' } as const satisfies Record<ChangeItem['op'], Action>;

type Result =
  | { item_index: number; state: 'succeeded'; payment: string; status: string; refund: string | null }
  | { item_index: number; state: 'failed'; error_code: string; error_message: string; error_param: string | null };

/**
 * Applies a chunk of captures, voids and refunds in `tx`, as their own
 * requests would one after another (`PaymentService.capture` and the rest:
 * the same rules, the same acquirer calls, the same audit entries and
 * events), but in a handful of statements for the whole chunk: its items and
 * their payments are locked, each item is decided in index order against
 * the payments as the items before it left them, and the outcome is written
 * by `tessera_payment_batch_changes`, then the audit entries, last. Items a
 * run whose lease ran out did meanwhile are left alone. Returns how many
 * items it recorded.
 */
export async function applyChanges(tx: Queryable, deps: { acquirer: Acquirer; audit: AuditLog }, by: BatchAuthor, items: readonly ChangeItem[]): Promise<number> {
  // The lock makes a second run wait for this chunk, then skip what it did.
  const { rows: locked } = await tx.query<{ item_index: number }>(
    `select item_index from payment_batch_items
      where batch_id = $1 and item_index = any($2::integer[]) and state = 'pending'
      order by item_index
      for update`,
    [by.batchId, items.map((item) => item.item_index)],
  );
  const pending = new Set(locked.map((row) => row.item_index));
  const todo = items.filter((item) => pending.has(item.item_index));
  if (todo.length === 0) return 0;

  // In id order, so two transactions locking overlapping sets of payments cannot wait for each other in a circle.
  const { rows } = await tx.query<PaymentRecord & { now: Date }>(
    `select ${COLUMNS}, now() as now from payments where merchant_id = $1 and id = any($2::text[]) order by id for update`,
    [by.merchantId, [...new Set(todo.map((item) => item.payment))]],
  );
  const payments = new Map<string, PaymentRecord>();
  let now: Date | undefined;
  for (const { now: at, ...payment } of rows) {
    payments.set(payment.id, payment);
    now = at;
  }

  const changed = new Set<string>();
  const refunds: { id: string; payment_id: string; amount: number }[] = [];
  const results: Result[] = [];
  const entries: AuditEntry[] = [];
  for (const item of todo) {
    try {
      const before = payments.get(item.payment);
      if (before === undefined) throw new VaultError('payment_not_found', { param: 'id' });
      const change = await decide(deps.acquirer, item, before);
      // As the update's `returning` would give it: `updated_at` is the transaction's time, now().
      const after: PaymentRecord = { ...before, ...change.payment, updated_at: now! };
      payments.set(after.id, after);
      changed.add(after.id);
      if (change.refund !== undefined) refunds.push(change.refund);
      results.push({ item_index: item.item_index, state: 'succeeded', payment: after.id, status: after.status, refund: change.refund?.id ?? null });
      const action = ACTIONS[item.op];
      entries.push({
        merchantId: by.merchantId,
        actor: by.actor,
        clientIp: by.clientIp,
        requestId: by.requestId,
        action,
        outcome: 'succeeded',
        token: after.token,
        paymentId: after.id,
        event: { type: action, data: after },
      });
    } catch (error) {
      const refusal = error instanceof AcquirerError ? new VaultError('acquirer_error', { cause: error }) : error;
      if (!(refusal instanceof VaultError)) throw error;
      results.push({ item_index: item.item_index, state: 'failed', error_code: refusal.code, error_message: refusal.message, error_param: refusal.param ?? null });
    }
  }

  await callFunction(tx, 'tessera_payment_batch_changes', {
    batch_id: by.batchId,
    merchant_id: by.merchantId,
    payments: JSON.stringify(
      [...changed].map((id) => {
        const { status, amount_captured, amount_refunded } = payments.get(id)!;
        return { id, status, amount_captured, amount_refunded };
      }),
    ),
    refunds: JSON.stringify(refunds),
    results: JSON.stringify(results),
  });
  // Last: an audit entry locks the merchant's chain until commit.
  await deps.audit.recordMany(entries, tx);
  return results.length;
}

/** One item's change of its payment, by the rules of its own request, made at the acquirer; or its refusal, thrown. */
async function decide(
  acquirer: Acquirer,
  item: ChangeItem,
  payment: PaymentRecord,
): Promise<{ payment: Partial<PaymentRecord>; refund?: { id: string; payment_id: string; amount: number } }> {
  const amount = item.amount ?? undefined;
  switch (item.op) {
    case 'capture': {
      const capture = captureAmount(payment, amount);
      await acquirer.capture(payment.id, capture);
      return { payment: { status: 'captured', amount_captured: capture } };
    }
    case 'void':
      checkVoidable(payment);
      await acquirer.void(payment.id);
      return { payment: { status: 'voided' } };
    case 'refund': {
      const refund = refundAmount(payment, amount);
      const id = newId('re');
      await acquirer.refund(payment.id, id, refund);
      return {
        payment: { status: statusAfterRefund(payment, refund), amount_refunded: payment.amount_refunded + refund },
        refund: { id, payment_id: payment.id, amount: refund },
      };
    }
  }
}
