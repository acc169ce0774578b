/**
 * A fresh Idempotency-Key for one tokenization: 32 random lower-case
 * letters (about 150 bits). Not a UUID: the vault refuses a key that holds
 * anything like a card number, and a UUID's dashed hex groups make a
 * Luhn-valid, brand-prefixed run of digits about once in 6,000 keys.
 */
export function newIdempotencyKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (byte) => String.fromCharCode(97 + (byte % 26))).join('');
}
