import { z } from 'zod';
import { VaultError } from '../errors.ts';
import { cvcFitsCard } from './card.ts';

const CvcPlaintext = z.strictObject({ cvc: z.string() });

/**
 * A re-collected CVC, decrypted from the card fields' JWE of `{"cvc":"…"}`:
 * anything else in the plaintext is refused, and the length must fit the
 * saved card's brand (4 digits for American Express, else 3).
 */
export function parseCvcPlaintext(plaintext: Uint8Array, cardNumber: string): string {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(plaintext).toString('utf8'));
  } catch {
    throw new VaultError('parameter_invalid', { message: 'The decrypted CVC is not JSON.', param: 'cvc' });
  }
  const result = CvcPlaintext.safeParse(json);
  if (!result.success) throw new VaultError('parameter_invalid', { message: 'The decrypted CVC does not have the expected fields.', param: 'cvc' });
  const { cvc } = result.data;
  if (!cvcFitsCard(cardNumber, cvc)) throw new VaultError('invalid_cvc', { param: 'cvc' });
  return cvc;
}
