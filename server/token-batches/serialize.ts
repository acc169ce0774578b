import { ERRORS, type ErrorCode } from '../errors.ts';

/** A batch as stored (`token_batches`). */
export interface TokenBatchRecord {
  id: string;
  merchant_id: string;
  correlation_id: string | null;
  status: 'pending' | 'processing' | 'completed';
  total: number;
  processed: number;
  succeeded: number;
  failed: number;
  created_at: Date;
  completed_at: Date | null;
}

/** An item's outcome as stored (`token_batch_items`, once processed). */
export interface TokenBatchResultRecord {
  item_index: number;
  reference: string | null;
  state: 'succeeded' | 'failed';
  token: string | null;
  brand: string | null;
  last4: string | null;
  exp_month: number | null;
  exp_year: number | null;
  error_code: string | null;
  error_message: string | null;
  error_param: string | null;
}

/** The token batch object of the API (and the `data.object` of `token_batch.completed`). */
export function tokenBatchBody(batch: TokenBatchRecord) {
  return {
    id: batch.id,
    object: 'token_batch' as const,
    status: batch.status,
    correlation_id: batch.correlation_id,
    total: batch.total,
    processed: batch.processed,
    succeeded: batch.succeeded,
    failed: batch.failed,
    created_at: batch.created_at.toISOString(),
    completed_at: batch.completed_at === null ? null : batch.completed_at.toISOString(),
  };
}

/** One result: the token and the card's harmless details, or the error the item would have had alone. Never card data. */
export function tokenBatchResultBody(result: TokenBatchResultRecord) {
  if (result.state === 'succeeded') {
    return {
      index: result.item_index,
      reference: result.reference,
      ok: true as const,
      token: result.token,
      card: { brand: result.brand, last4: result.last4, exp_month: result.exp_month, exp_year: result.exp_year },
    };
  }
  const code = result.error_code as ErrorCode;
  return {
    index: result.item_index,
    reference: result.reference,
    ok: false as const,
    error: {
      type: ERRORS[code]?.type ?? 'api',
      code,
      message: result.error_message,
      ...(result.error_param === null ? {} : { param: result.error_param }),
    },
  };
}
