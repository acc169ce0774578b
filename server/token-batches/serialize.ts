import { batchProgress, itemError, type BatchRecord } from '../batches/serialize.ts';
import type { NetworkTokenStatus } from '../network-tokens/token-service.ts';

/** A batch as stored (`token_batches`). */
export interface TokenBatchRecord extends BatchRecord {
  created_at: Date;
  completed_at: Date | null;
  /** Whether the batch requests network tokens, and how many of them are in each state. */
  network_tokens: boolean;
  network_token_counts: Partial<Record<NetworkTokenStatus, number>> | null;
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
    ...batchProgress(batch),
    ...(batch.network_tokens ? { network_tokens: networkTokenCounts(batch.network_token_counts ?? {}) } : {}),
  };
}

/** A batch's network tokens: how many were requested, and how many are in each state. */
function networkTokenCounts(counts: Partial<Record<NetworkTokenStatus, number>>) {
  const states = ['pending', 'active', 'ineligible', 'declined', 'suspended', 'deleted'] as const;
  return {
    requested: states.reduce((sum, state) => sum + (counts[state] ?? 0), 0),
    ...Object.fromEntries(states.map((state) => [state, counts[state] ?? 0])),
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
  return { index: result.item_index, reference: result.reference, ok: false as const, error: itemError(result) };
}
