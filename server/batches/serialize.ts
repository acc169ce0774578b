import { ERRORS, type ErrorCode } from '../errors.ts';

/** What every batch has, as stored (`token_batches`, `payment_batches`). */
export interface BatchRecord {
  id: string;
  merchant_id: string;
  correlation_id: string | null;
  status: 'pending' | 'processing' | 'completed';
  total: number;
  processed: number;
  succeeded: number;
  failed: number;
  /** A Date when read; a string in a stored event's record. */
  created_at: Date | string;
  completed_at: Date | string | null;
}

const iso = (date: Date | string | null) => (date === null ? null : new Date(date).toISOString());

/** The progress every batch object of the API shows, after its `id` and `object`. */
export function batchProgress(batch: BatchRecord) {
  return {
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

/** A failed item's error, as its own request would have answered it. */
export function itemError(result: { error_code: string | null; error_message: string | null; error_param: string | null }) {
  const code = result.error_code as ErrorCode;
  return {
    type: ERRORS[code]?.type ?? 'api',
    code,
    message: result.error_message,
    ...(result.error_param === null ? {} : { param: result.error_param }),
  };
}
