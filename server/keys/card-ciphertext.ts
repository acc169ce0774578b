import { createDecipheriv, createECDH, createHash, type ECDH, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
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

/**
 * Opens a JWE that passed `cardCiphertextKey` with the key it answered: on
 * the main thread and on the decrypt pool's threads (card-decrypt-pool.ts).
 *
 * Exactly our one profile (ECDH-ES+A256KW on P-256, A256GCM), built from
 * synchronous node:crypto primitives rather than jose: jose 6 is
 * WebCrypto-only, so every decrypt was five to six promise-returning subtle
 * calls, about three times the CPU of these (docs/decisions.md, "Keys").
 * The unit tests hold it to jose, which stays their oracle: what jose opens
 * this opens to the same bytes, and what jose refuses for this profile this
 * refuses too. It also refuses what jose would let through but neither the
 * fields nor `card-import.ts` send: an `epk` with members other than kty,
 * crv, x and y, or with x or y that are not 32 bytes in canonical base64url.
 */
export function decryptCardCiphertext(jwe: string, key: KeyObject, param = 'card'): Uint8Array {
  try {
    return openProfile(jwe, key);
  } catch {
    // Which check failed (header, epk, key unwrap, tag) stays with the vault: one answer for all of them.
    throw invalid('The card ciphertext could not be decrypted.', param);
  }
}

/** RFC 3394's default initial value, the integrity check of an AES key unwrap. */
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const ALGORITHM_ID = Buffer.from(JWE_ALG, 'ascii');
/** SEC 1's prefix of an uncompressed point (0x04, then x and y). */
const UNCOMPRESSED_POINT = Buffer.from([4]);
/** What follows the SEQUENCE's tag and (short) length in SEC 1 DER (RFC 5915): version 1, then the 32-byte private scalar. */
const SEC1_SCALAR_PREFIX = Buffer.from('0201010420', 'hex');
const SEC1_SCALAR_AT = 2 + SEC1_SCALAR_PREFIX.length;

/**
 * Each transport key's ECDH, made once: agreeing on a secret from the raw
 * point costs about 110 µs, where turning the epk into a KeyObject and then
 * calling diffieHellman cost about 75 + 95 µs (docs/decisions.md, "Keys").
 * Held as weakly as the key itself, on each thread that opens cards with it.
 */
const agreements = new WeakMap<KeyObject, ECDH>();

function keyAgreement(key: KeyObject): ECDH {
  const known = agreements.get(key);
  if (known !== undefined) return known;
  check(key.type === 'private' && key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  const der = key.export({ format: 'der', type: 'sec1' });
  try {
    check(der[0] === 0x30 && der[1]! < 0x80 && der.subarray(2, SEC1_SCALAR_AT).equals(SEC1_SCALAR_PREFIX));
    const agreement = createECDH('prime256v1');
    // setPrivateKey copies the scalar (and derives the public key), so the exported bytes are wiped at once.
    agreement.setPrivateKey(der.subarray(SEC1_SCALAR_AT, SEC1_SCALAR_AT + P256_COORDINATE_BYTES));
    agreements.set(key, agreement);
    return agreement;
  } finally {
    der.fill(0);
  }
}

/** All an `epk` may carry: a private member (`d`), or anything else, is refused. */
const EPK_MEMBERS = new Set(['kty', 'crv', 'x', 'y']);
const P256_COORDINATE_BYTES = 32;
/** A 256-bit content key, wrapped: RFC 3394 adds one 64-bit block. */
const WRAPPED_CEK_BYTES = 40;
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

class Refused extends Error {}
function check(condition: boolean): asserts condition {
  if (!condition) throw new Refused();
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;

/** Decodes a base64url member, refusing any other spelling of its bytes (the segments were checked by `cardCiphertextKey`). */
function base64urlBytes(value: unknown): Buffer {
  check(typeof value === 'string' && /^[A-Za-z0-9_-]*$/.test(value));
  const bytes = Buffer.from(value, 'base64url');
  check(bytes.toString('base64url') === value);
  return bytes;
}

const lengthPrefixed = (bytes: Buffer) => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return [length, bytes];
};

function openProfile(jwe: string, key: KeyObject): Uint8Array {
  const segments = jwe.split('.');
  check(segments.length === 5);
  const [protectedSegment, encryptedKeySegment, ivSegment, ciphertextSegment, tagSegment] = segments as [string, string, string, string, string];

  const header: unknown = JSON.parse(strictUtf8.decode(base64urlBytes(protectedSegment)));
  check(isPlainObject(header));
  check(header['alg'] === JWE_ALG && header['enc'] === JWE_ENC);
  // jose recognises no extension, so any `crit` is refused there; `zip` is refused at the front door as well.
  check(!Object.hasOwn(header, 'crit') && !Object.hasOwn(header, 'zip'));

  const epk = header['epk'];
  check(isPlainObject(epk) && Object.keys(epk).every((member) => EPK_MEMBERS.has(member)));
  check(epk['kty'] === 'EC' && epk['crv'] === 'P-256');
  const x = base64urlBytes(epk['x']);
  const y = base64urlBytes(epk['y']);
  check(x.length === P256_COORDINATE_BYTES && y.length === P256_COORDINATE_BYTES);
  const agreement = keyAgreement(key);

  // PartyUInfo and PartyVInfo go into the KDF as RFC 7518 §4.6.2 says, as jose does (which also refuses the two being equal).
  const apu = header['apu'] === undefined ? Buffer.alloc(0) : base64urlBytes(header['apu']);
  const apv = header['apv'] === undefined ? Buffer.alloc(0) : base64urlBytes(header['apv']);
  check(header['apu'] === undefined || header['apv'] === undefined || !apu.equals(apv));

  const encryptedKey = base64urlBytes(encryptedKeySegment);
  const iv = base64urlBytes(ivSegment);
  const tag = base64urlBytes(tagSegment);
  check(encryptedKey.length === WRAPPED_CEK_BYTES && iv.length === GCM_IV_BYTES && tag.length === GCM_TAG_BYTES);

  // The intermediate secrets are zeroed however the decrypt ends (a failed tag included).
  const secrets: Buffer[] = [];
  try {
    // Concat KDF, one SHA-256 round: the key-encryption key is 256 bits, so keydatalen is 256 and AlgorithmID the alg.
    // OpenSSL refuses a point off the curve here (P-256's cofactor is 1, so that is every invalid-curve point).
    const sharedSecret = agreement.computeSecret(Buffer.concat([UNCOMPRESSED_POINT, x, y]));
    const keydatalen = Buffer.alloc(4);
    keydatalen.writeUInt32BE(256);
    const kdfInput = Buffer.concat([Buffer.from([0, 0, 0, 1]), sharedSecret, ...lengthPrefixed(ALGORITHM_ID), ...lengthPrefixed(apu), ...lengthPrefixed(apv), keydatalen]);
    secrets.push(sharedSecret, kdfInput);
    const kek = createHash('sha256').update(kdfInput).digest();
    secrets.push(kek);

    const unwrap = createDecipheriv('id-aes256-wrap', kek, AES_KW_IV);
    const cek = Buffer.concat([unwrap.update(encryptedKey), unwrap.final()]);
    secrets.push(cek);

    const decipher = createDecipheriv('aes-256-gcm', cek, iv, { authTagLength: GCM_TAG_BYTES });
    // The protected header's encoding, as ASCII, is the additional authenticated data (RFC 7516 §5.2).
    decipher.setAAD(Buffer.from(protectedSegment, 'ascii'));
    decipher.setAuthTag(tag);
    const plaintext = decipher.update(base64urlBytes(ciphertextSegment));
    // GCM releases nothing at the end; final() is where the tag is checked.
    decipher.final();
    return plaintext;
  } finally {
    for (const secret of secrets) secret.fill(0);
  }
}

/** How long an accepted ciphertext is remembered against replays: past the longest time a JWE is accepted, so a replay is always caught. */
export function replayRecordUntil(policy: CiphertextPolicy, now = Date.now()): Date {
  return new Date(now + (policy.maxAgeSeconds + policy.maxFutureSeconds + 60) * 1000);
}
