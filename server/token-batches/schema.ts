import { z } from 'zod';
import { MAX_JWE_BYTES } from '../keys/card-ciphertext.ts';
import { freeText } from '../lib/free-text.ts';
import { Customer } from '../tokens/schema.ts';

/** Items in one `POST /v1/token-batches` (api.md). */
export const TOKEN_BATCH_MAX_ITEMS = 10_000;

/**
 * The envelope first, items unread: a body of a million tiny items is
 * refused for its count before any item is parsed.
 */
export const TokenBatchEnvelope = z.object({
  items: z.array(z.unknown()).min(1).max(TOKEN_BATCH_MAX_ITEMS),
});

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
  items: z.array(TokenBatchItem).min(1).max(TOKEN_BATCH_MAX_ITEMS),
});

export type TokenBatchInput = z.output<typeof TokenBatchRequest>;

export const TokenBatchPath = z.strictObject({ id: freeText({ max: 64, pattern: /^tbat_[A-Za-z0-9]+$/ }) });

/** Results are in item order; `starting_after` is the index of the last result of the previous page. */
export const TokenBatchResultsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  starting_after: z
    .string()
    .regex(/^\d{1,5}$/)
    .transform(Number)
    .pipe(z.number().max(TOKEN_BATCH_MAX_ITEMS - 1))
    .optional(),
});
