import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';

/** Items in one batch request, token or payment batch (api.md). */
export const BATCH_MAX_ITEMS = 10_000;

/**
 * The envelope first, items unread: a body of a million tiny items is
 * refused for its count before any item is parsed.
 */
export const BatchEnvelope = z.object({
  items: z.array(z.unknown()).min(1).max(BATCH_MAX_ITEMS),
});

/** The `{id}` of a batch's path: its kind's prefix, then letters and digits. */
export function batchPath(prefix: 'tbat' | 'pbat') {
  return z.strictObject({ id: freeText({ max: 64, pattern: new RegExp(`^${prefix}_[A-Za-z0-9]+$`) }) });
}

/** Results are in item order; `starting_after` is the index of the last result of the previous page. */
export const BatchResultsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  starting_after: z
    .string()
    .regex(/^\d{1,5}$/)
    .transform(Number)
    .pipe(z.number().max(BATCH_MAX_ITEMS - 1))
    .optional(),
});
