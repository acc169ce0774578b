import { pooledRandomBytes } from './random.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `bytes` of randomness as a fixed-length base62 string (alphanumeric, safe in URLs and logs). */
export const randomBase62 = (bytes: number): string => base62(pooledRandomBytes(bytes));

/**
 * Bytes as a base62 string whose length depends only on how many bytes there
 * are: the big-endian number they spell, written in base 62 with leading
 * zeros. Divided down in 32-bit limbs (a remainder times 2³² plus a limb
 * stays below 2⁵³, exact in a double) rather than as a BigInt, whose every
 * division allocates: two ids on every tokenization's way.
 */
export function base62(bytes: Uint8Array): string {
  const length = Math.ceil((bytes.length * 8) / Math.log2(62));
  const limbs: number[] = [];
  // The limbs from the most significant; the first holds what the others leave over.
  for (let end = bytes.length; end > 0; end -= 4) {
    let limb = 0;
    for (let i = Math.max(0, end - 4); i < end; i++) limb = limb * 256 + bytes[i]!;
    limbs.unshift(limb);
  }
  const digits = new Array<string>(length);
  for (let d = length - 1; d >= 0; d--) {
    let remainder = 0;
    for (let i = 0; i < limbs.length; i++) {
      const value = remainder * 0x1_0000_0000 + limbs[i]!;
      limbs[i] = Math.floor(value / 62);
      remainder = value - limbs[i]! * 62;
    }
    digits[d] = BASE62[remainder]!;
  }
  return digits.join('');
}

/** An unguessable object id such as `tok_…`: 128 random bits unless told otherwise. */
export const newId = (prefix: string, bytes = 16): string => `${prefix}_${randomBase62(bytes)}`;

/**
 * `bytes` of randomness as lower-case letters (two per byte), for values the
 * vault checks for card numbers, such as an Idempotency-Key: hex or a UUID
 * can hold a Luhn-valid run of digits by chance, letters never do.
 */
export const randomLetters = (bytes: number): string => Array.from(pooledRandomBytes(bytes), (byte) => String.fromCharCode(97 + (byte >> 4), 97 + (byte & 15))).join('');
