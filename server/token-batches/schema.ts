import { z } from 'zod';
import { BATCH_MAX_ITEMS } from '../batches/schema.ts';
import { MAX_JWE_BYTES } from '../keys/card-ciphertext.ts';
import { freeText } from '../lib/free-text.ts';
import { Customer } from '../tokens/schema.ts';

/** A reference or correlation id: the merchant's own name for a row or a batch, stored and echoed, so never a card number. */
const Reference = freeText({ max: 255, pattern: /^[\x20-\x7e\u00a0-\uffff]+$/ });

/**
 * One card to tokenize. Its JWE is only measured here (a string of at most
 * 8 KiB): whether it opens, and what it holds, is the item's own outcome.
 */
export const TokenBatchItem = z.strictObject({
  card: z
    .string()
    .min(1)
    .max(MAX_JWE_BYTES, { abort: true })
    .refine((jwe) => Buffer.byteLength(jwe, 'utf8') <= MAX_JWE_BYTES, 'at most 8 KiB'),
  reference: Reference.optional(),
  /** Cards on file: saved unless told otherwise, as from a merchant server. */
  reusable: z.boolean().default(true),
  customer: Customer.optional(),
  decline_duplicates: z.boolean().default(false),
});

export const TokenBatchRequest = z.strictObject({
  correlation_id: Reference.optional(),
  /** Request a network token for each reusable token the batch makes. */
  network_tokens: z.boolean().default(false),
  items: z.array(TokenBatchItem).min(1).max(BATCH_MAX_ITEMS),
});

export type TokenBatchInput = z.output<typeof TokenBatchRequest>;
