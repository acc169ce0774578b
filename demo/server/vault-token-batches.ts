import type { JWK } from 'jose';
import { z } from 'zod';
import type { TokenBatchItem } from '../../merchant-side/card-import.ts';
import type { VaultClient } from './vault-client.ts';

/** A token batch as the vault answers it (and as `token_batch.completed` carries it). */
export const TokenBatchSchema = z.object({
  id: z.string().regex(/^tbat_[A-Za-z0-9]{1,64}$/),
  status: z.enum(['pending', 'processing', 'completed']),
  correlation_id: z.string().nullable(),
  total: z.number().int(),
  processed: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  created_at: z.string(),
  completed_at: z.string().nullable(),
  /** Only on a batch that asked for network tokens: how many are in each state. */
  network_tokens: z
    .object({ requested: z.number().int(), pending: z.number().int(), active: z.number().int(), ineligible: z.number().int(), declined: z.number().int() })
    .optional(),
});
export type VaultTokenBatch = z.infer<typeof TokenBatchSchema>;

/** An item's outcome: its token and the card's brand, last 4 and expiry, or its error. Never card data. */
const TokenBatchResultSchema = z.object({
  index: z.number().int().min(0),
  reference: z.string().nullable(),
  ok: z.boolean(),
  token: z.string().optional(),
  card: z.object({ brand: z.string(), last4: z.string(), exp_month: z.number().int(), exp_year: z.number().int() }).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type VaultTokenBatchResult = z.infer<typeof TokenBatchResultSchema>;

const ResultsPageSchema = z.object({ data: z.array(TokenBatchResultSchema), has_more: z.boolean() });
const KeysSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

/** The vault's token batches (async batch tokenization) and its public transport keys, as the shop's server calls them. */
export class VaultTokenBatches {
  constructor(readonly vault: VaultClient) {}

  /** `GET /v1/keys`: the public keys cards are encrypted to, the current one first. */
  async transportKeys(): Promise<JWK[]> {
    return (await this.vault.request(KeysSchema, 'GET', '/v1/keys')).keys as JWK[];
  }

  create(batch: { correlation_id?: string; network_tokens: boolean; items: TokenBatchItem[] }, idempotencyKey: string): Promise<VaultTokenBatch> {
    return this.vault.request(TokenBatchSchema, 'POST', '/v1/token-batches', batch, idempotencyKey);
  }

  one(id: string): Promise<VaultTokenBatch> {
    return this.vault.request(TokenBatchSchema, 'GET', `/v1/token-batches/${encodeURIComponent(id)}`);
  }

  /** One page of results in item order, after the item `startingAfter` (an index) when given. */
  results(id: string, limit: number, startingAfter?: number): Promise<z.output<typeof ResultsPageSchema>> {
    const after = startingAfter === undefined ? '' : `&starting_after=${startingAfter}`;
    return this.vault.request(ResultsPageSchema, 'GET', `/v1/token-batches/${encodeURIComponent(id)}/results?limit=${limit}${after}`);
  }
}
