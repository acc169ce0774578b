import { VaultError } from '../errors.ts';
import type { IdempotencyClaim } from '../idempotency/idempotency.ts';
import { AcquirerError, type Acquirer, type AuthorizationRequest } from './acquirer.ts';
import { acquirerReference } from './reference.ts';

export interface Verification {
  status: 'succeeded' | 'failed';
  decline_code: string | null;
}

/** Account verification: a small authorization, voided at once. */
const VERIFICATION = { amount: 100, currency: 'EUR' } as const;

/**
 * Account verification: authorizes a small amount and voids it. The
 * reference is derived from the Idempotency-Key, so a retry after an
 * acquirer error finds the first authorization instead of making another.
 */
export async function verifyAccount(acquirer: Acquirer, card: AuthorizationRequest['card'], claim: IdempotencyClaim | undefined): Promise<Verification> {
  const reference = acquirerReference('ver', claim);
  try {
    const outcome = await acquirer.authorize({ reference, card, ...VERIFICATION, initiator: 'customer', recurring: false });
    if (!outcome.approved) return { status: 'failed', decline_code: outcome.declineCode };
    await acquirer.void(reference);
    return { status: 'succeeded', decline_code: null };
  } catch (error) {
    if (error instanceof AcquirerError) throw new VaultError('acquirer_error', { cause: error });
    throw error;
  }
}
