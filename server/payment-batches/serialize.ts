import { batchProgress, itemError, type BatchRecord } from '../batches/serialize.ts';

/** A batch as stored (`payment_batches`); in its `payment_batch.completed` event, as stored then. */
export type PaymentBatchRecord = BatchRecord;

/** An item's outcome as stored (`payment_batch_items`, once processed). */
export interface PaymentBatchResultRecord {
  item_index: number;
  op: 'capture' | 'void' | 'refund' | 'charge';
  reference: string | null;
  state: 'succeeded' | 'failed';
  result_payment: string | null;
  result_status: string | null;
  refund: string | null;
  error_code: string | null;
  error_message: string | null;
  error_param: string | null;
  decline_code: string | null;
}

/** The payment batch object of the API (and the `data.object` of `payment_batch.completed`). */
export function paymentBatchBody(batch: PaymentBatchRecord) {
  return {
    id: batch.id,
    object: 'payment_batch' as const,
    ...batchProgress(batch),
  };
}

/**
 * One item's outcome: the payment it made or changed (and its status after
 * it; a refund's id), or the error it would have had alone — a declined
 * charge names its declined payment and decline code.
 */
export function paymentBatchResultBody(result: PaymentBatchResultRecord) {
  const base = { index: result.item_index, op: result.op, reference: result.reference };
  if (result.state === 'succeeded') {
    return {
      ...base,
      ok: true as const,
      payment: result.result_payment,
      status: result.result_status,
      ...(result.refund === null ? {} : { refund: result.refund }),
    };
  }
  return {
    ...base,
    ok: false as const,
    ...(result.result_payment === null ? {} : { payment: result.result_payment }),
    error: { ...itemError(result), ...(result.decline_code === null ? {} : { decline_code: result.decline_code }) },
  };
}
