import { createCipheriv, createDecipheriv } from 'node:crypto';
import { pooledRandomBytes } from '../lib/random.ts';

/**
 * AES-256-GCM envelope used for everything the vault keeps encrypted: keys
 * wrapped under the master key, cards under their own data-encryption key,
 * CVCs under a short-lived bucket key. The additional authenticated data
 * names what the blob is and whose it is, so a blob copied to another row,
 * merchant or purpose fails to open.
 *
 * Layouts:
 * - v1: 0x01 ‖ IV (12) ‖ tag (16) ‖ ciphertext — the key is known from where the blob is stored.
 * - v2: 0x02 ‖ key id (8) ‖ IV ‖ tag ‖ ciphertext — the key is one of several (the master
 *   key and the ones it replaced); the id picks it and is authenticated with the AAD.
 */
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_ID_BYTES = 8;

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

function encrypt(key: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  const iv = pooledRandomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function decrypt(key: Buffer, body: Buffer, aad: string): Buffer {
  if (body.length < IV_BYTES + TAG_BYTES) throw new EnvelopeError('sealed blob is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(body.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(body.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new EnvelopeError('sealed blob failed authentication');
  }
}

const asBuffer = (sealed: Uint8Array) => Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
const withKeyId = (aad: string, keyId: Buffer) => `${aad}#${keyId.toString('hex')}`;

export function seal(key: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  return Buffer.concat([Buffer.of(1), encrypt(key, plaintext, aad)]);
}

export function open(key: Buffer, sealed: Uint8Array, aad: string): Buffer {
  const blob = asBuffer(sealed);
  if (blob[0] !== 1) throw new EnvelopeError('sealed blob has an unknown format');
  return decrypt(key, blob.subarray(1), aad);
}

/** Seals under one key of a ring, naming it (v2). */
export function sealWithKeyId(key: Buffer, keyId: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  if (keyId.length !== KEY_ID_BYTES) throw new RangeError(`a key id is ${KEY_ID_BYTES} bytes`);
  return Buffer.concat([Buffer.of(2), keyId, encrypt(key, plaintext, withKeyId(aad, keyId))]);
}

/** The key id a v2 blob names; undefined for a v1 blob, whose key is not named. */
export function keyIdOf(sealed: Uint8Array): Buffer | undefined {
  const blob = asBuffer(sealed);
  if (blob[0] === 2 && blob.length > 1 + KEY_ID_BYTES) return blob.subarray(1, 1 + KEY_ID_BYTES);
  if (blob[0] === 1) return undefined;
  throw new EnvelopeError('sealed blob has an unknown format');
}

/** Opens a v2 blob with the key its id names, or a v1 blob with `key`. */
export function openWithKeyId(key: Buffer, sealed: Uint8Array, aad: string): Buffer {
  const blob = asBuffer(sealed);
  const keyId = keyIdOf(blob);
  if (keyId === undefined) return open(key, blob, aad);
  return decrypt(key, blob.subarray(1 + KEY_ID_BYTES), withKeyId(aad, keyId));
}

/** Additional authenticated data for each kind of sealed blob, in one place. */
export const aad = {
  transportKey: (kid: string) => `tessera/v1/transport-key/${kid}`,
  dataKey: (merchantId: string, version: number) => `tessera/v1/data-key/${merchantId}/${version}`,
  fingerprintKey: (merchantId: string) => `tessera/v1/fingerprint-key/${merchantId}`,
  /** A card sealed directly under a merchant data key (before per-token keys; still opened, never written). */
  legacyCard: (merchantId: string, token: string, version: number) => `tessera/v1/card/${merchantId}/${token}/${version}`,
  /** A card under its own data-encryption key: the key's wrap binds it to the token. */
  card: (merchantId: string) => `tessera/v2/card/${merchantId}`,
  /** A token's card key, wrapped under the merchant's data key of `version`. */
  cardKey: (merchantId: string, token: string, version: number) => `tessera/v2/card-key/${merchantId}/${token}/${version}`,
  /** The card key of details waiting to be proven for a unique token (bound to the card, the token is not known yet). */
  pendingCardKey: (merchantId: string, fingerprint: string, version: number) => `tessera/v2/pending-card-key/${merchantId}/${fingerprint}/${version}`,
  /** A CVC bucket's key, wrapped under the master key. */
  cvcKey: (bucket: number) => `tessera/v2/cvc-key/${bucket}`,
  cvc: (merchantId: string, token: string, bucket: number) => `tessera/v2/cvc/${merchantId}/${token}/${bucket}`,
  pendingCvc: (merchantId: string, fingerprint: string, bucket: number) => `tessera/v2/pending-cvc/${merchantId}/${fingerprint}/${bucket}`,
  /** A webhook endpoint's signing secret (`whsec_…`), current or previous. */
  webhookSecret: (endpointId: string) => `tessera/v2/webhook-secret/${endpointId}`,
  /** A stored idempotent response that carries a key (scope and Idempotency-Key). */
  idempotentResponse: (context: string) => `tessera/v1/idempotent-response/${context}`,
};
