import { createHash, type KeyObject } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import { VaultError } from '../errors.ts';
import { JWE_ALG, JWE_ENC, type TransportKeyring } from './transport-keys.ts';

/** Compact JWEs above this are refused before any parsing or decryption. */
export const MAX_JWE_BYTES = 8 * 1024;
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface CiphertextPolicy {
  maxAgeSeconds: number;
  maxFutureSeconds: number;
}

const invalid = (message: string, param: string) => new VaultError('invalid_jwe', { message, param });

/**
 * The one base64url spelling of a segment's bytes. Decoders ignore the
 * unused low bits of a segment's last character (and jose's does), so
 * other spellings decode to the same bytes: accepting them would let one
 * ciphertext pass the replay check several times.
 */
const canonical = (segment: string) => Buffer.from(segment, 'base64url').toString('base64url');

/**
 * What the replay record of a JWE is keyed on: its decoded bytes, segment by
 * segment (SHA-256 of their canonical encoding, which for the canonical JWEs
 * `openCardCiphertext` accepts is the JWE string itself, as the records
 * written before this key existed were).
 */
export function replayKey(jwe: string): Buffer {
  return createHash('sha256').update(jwe.split('.').map(canonical).join('.')).digest();
}

/**
 * Opens card data encrypted by the fields (or a merchant server) to the
 * vault's transport key. Everything is checked before the private key is
 * touched: size, shape, canonical base64url, exactly one alg and enc, no
 * compression, a known kid (never trying other keys), and an `iat` inside
 * the allowed window. Replays are refused by the caller, keyed on
 * `replayKey`.
 */
export async function openCardCiphertext(
  jwe: string,
  keyring: Pick<TransportKeyring, 'resolve'>,
  policy: CiphertextPolicy,
  param = 'card',
  now = Date.now(),
): Promise<Uint8Array> {
  const { key } = await cardCiphertextKey(jwe, keyring, policy, param, now);
  return decryptCardCiphertext(jwe, key, param);
}

/**
 * The checks `openCardCiphertext` makes before decrypting, and the private
 * key that may open `jwe` at `now` (a batch item: its batch's acceptance).
 */
export async function cardCiphertextKey(
  jwe: string,
  keyring: Pick<TransportKeyring, 'resolve'>,
  policy: CiphertextPolicy,
  param = 'card',
  now = Date.now(),
): Promise<{ kid: string; key: KeyObject }> {
  if (Buffer.byteLength(jwe, 'utf8') > MAX_JWE_BYTES) throw invalid('The card ciphertext is larger than 8 KiB.', param);
  if (!COMPACT_JWE.test(jwe)) throw invalid('The card ciphertext is not a compact JWE.', param);
  if (jwe.split('.').some((segment) => canonical(segment) !== segment)) {
    throw invalid('The card ciphertext is not canonical base64url.', param);
  }

  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(jwe);
  } catch {
    throw invalid('The card ciphertext has an unreadable protected header.', param);
  }
  if (header.alg !== JWE_ALG) throw invalid(`The card ciphertext must use alg ${JWE_ALG}.`, param);
  if (header.enc !== JWE_ENC) throw invalid(`The card ciphertext must use enc ${JWE_ENC}.`, param);
  if ('zip' in header) throw invalid('Compressed card ciphertexts are not accepted.', param);
  if (typeof header.kid !== 'string' || header.kid.length === 0) throw invalid('The card ciphertext has no kid.', param);

  const iat = header['iat'];
  if (typeof iat !== 'number' || !Number.isInteger(iat)) throw invalid('The card ciphertext has no iat.', param);
  const ageSeconds = Math.floor(now / 1000) - iat;
  if (ageSeconds > policy.maxAgeSeconds || -ageSeconds > policy.maxFutureSeconds) {
    throw new VaultError('stale_ciphertext', { param });
  }

  const key = await keyring.resolve(header.kid, new Date(now));
  if (key === undefined) throw new VaultError('unknown_kid', { param });
  return { kid: header.kid, key };
}

/** Decrypts a JWE that passed `cardCiphertextKey` with the key it answered (off the main thread too: see card-decrypt-pool.ts). */
export async function decryptCardCiphertext(jwe: string, key: KeyObject, param = 'card'): Promise<Uint8Array> {
  try {
    const { plaintext } = await compactDecrypt(jwe, key, {
      keyManagementAlgorithms: [JWE_ALG],
      contentEncryptionAlgorithms: [JWE_ENC],
    });
    return plaintext;
  } catch {
    // Which check failed (tag, key unwrap, epk) stays with the vault: one answer for all of them.
    throw invalid('The card ciphertext could not be decrypted.', param);
  }
}

/** How long an accepted ciphertext is remembered against replays: past the longest time a JWE is accepted, so a replay is always caught. */
export function replayRecordUntil(policy: CiphertextPolicy, now = Date.now()): Date {
  return new Date(now + (policy.maxAgeSeconds + policy.maxFutureSeconds + 60) * 1000);
}
