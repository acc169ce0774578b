import type { ResponseSeal } from '../idempotency/idempotency.ts';
import { aad } from './envelope.ts';
import type { MasterKey } from './master-key.ts';

export const RESPONSE_SEAL_PREFIX = 'sealed:';

/**
 * Seals stored idempotent responses that carry a key (the secret key of a new
 * merchant) under the master key: a retry of the creation gets the keys it
 * lost, and the idempotency table never holds a secret key in the clear.
 */
export function masterKeyResponseSeal(master: MasterKey): ResponseSeal {
  return {
    seal: (body, context) => `${RESPONSE_SEAL_PREFIX}${master.wrap(Buffer.from(body, 'utf8'), aad.idempotentResponse(context)).toString('base64')}`,
    open(stored, context) {
      if (!stored.startsWith(RESPONSE_SEAL_PREFIX)) throw new Error('the stored response is not sealed');
      return master.unwrap(Buffer.from(stored.slice(RESPONSE_SEAL_PREFIX.length), 'base64'), aad.idempotentResponse(context)).toString('utf8');
    },
  };
}
