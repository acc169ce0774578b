import type { IdempotencyClaim } from '../idempotency/idempotency.ts';
import { newId } from '../lib/ids.ts';

/**
 * The id of a payment or verification, which is also its reference at the
 * acquirer. Under an Idempotency-Key it comes from the key's record, so a
 * retry after an acquirer error asks the acquirer about the same
 * authorization and the merchant gets the same payment; without one it is
 * fresh. Either way it carries 128 random bits.
 */
export function acquirerReference(prefix: 'pay' | 'ver', claim: IdempotencyClaim | undefined): string {
  return claim === undefined ? newId(prefix) : `${prefix}_${claim.reference}`;
}
