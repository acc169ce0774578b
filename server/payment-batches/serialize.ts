import { ERRORS, type ErrorCode } from '../errors.ts';

/** A batch as stored (`payment_batches`). */
export interface PaymentBatchRecord {
  id: string;
  merchant_id: string;
  correlation_id: string | null;
  status: 'pending' | 'processing' | 'completed';
  total: number;
  processed: number;
  succeeded: number;
  failed: number;
  created_at: Date | string;
  completed_at: Date | string | null;
}

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

const iso = (date: Date | string | null) => (date === null ? null : new Date(date).toISOString());

/** The payment batch object of the API (and the `data.object` of `payment_batch.completed`). */
export function paymentBatchBody(batch: PaymentBatchRecord) {
  return {
    id: batch.id,
    object: 'payment_batch' as const,
    status: batch.status,
    correlation_id: batch.correlation_id,
    total: batch.total,
    processed: batch.processed,
    succeeded: batch.succeeded,
    failed: batch.failed,
    created_at: iso(batch.created_at),
    completed_at: iso(batch.completed_at),
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
  const code = result.error_code as ErrorCode;
  return {
    ...base,
    ok: false as const,
    ...(result.result_payment === null ? {} : { payment: result.result_payment }),
    error: {
      type: ERRORS[code]?.type ?? 'api',
      code,
      message: result.error_message,
      ...(result.error_param === null ? {} : { param: result.error_param }),
      ...(result.decline_code === null ? {} : { decline_code: result.decline_code }),
    },
  };
}
