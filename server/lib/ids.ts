import { pooledRandomBytes } from './random.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `bytes` of randomness as a fixed-length base62 string (alphanumeric, safe in URLs and logs). */
export const randomBase62 = (bytes: number): string => base62(pooledRandomBytes(bytes));

/** Bytes as a base62 string whose length depends only on how many bytes there are. */
export function base62(bytes: Uint8Array): string {
  const length = Math.ceil((bytes.length * 8) / Math.log2(62));
  let n = bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  let out = '';
  for (let i = 0; i < length; i++) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out;
}

/** An unguessable object id such as `tok_…`: 128 random bits unless told otherwise. */
export const newId = (prefix: string, bytes = 16): string => `${prefix}_${randomBase62(bytes)}`;

/**
 * `bytes` of randomness as lower-case letters (two per byte), for values the
 * vault checks for card numbers, such as an Idempotency-Key: hex or a UUID
 * can hold a Luhn-valid run of digits by chance, letters never do.
 */
export const randomLetters = (bytes: number): string => Array.from(pooledRandomBytes(bytes), (byte) => String.fromCharCode(97 + (byte >> 4), 97 + (byte & 15))).join('');
