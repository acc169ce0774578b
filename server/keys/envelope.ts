import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM envelope used for everything the vault keeps encrypted: wrapped
 * keys under the master key, and card data under a merchant's data key.
 * Layout: version (1 byte) ‖ IV (12) ‖ tag (16) ‖ ciphertext. The additional
 * authenticated data names what the blob is and whose it is, so a blob copied
 * to another row, merchant or purpose fails to open.
 */
const FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

export function seal(key: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(FORMAT_VERSION), iv, cipher.getAuthTag(), body]);
}

export function open(key: Buffer, sealed: Uint8Array, aad: string): Buffer {
  const blob = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (blob.length < HEADER_BYTES || blob[0] !== FORMAT_VERSION) throw new EnvelopeError('sealed blob has an unknown format');
  const iv = blob.subarray(1, 1 + IV_BYTES);
  const tag = blob.subarray(1 + IV_BYTES, HEADER_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES)), decipher.final()]);
  } catch {
    throw new EnvelopeError('sealed blob failed authentication');
  }
}

/** Additional authenticated data for each kind of sealed blob, in one place. */
export const aad = {
  transportKey: (kid: string) => `tessera/v1/transport-key/${kid}`,
  dataKey: (merchantId: string, version: number) => `tessera/v1/data-key/${merchantId}/${version}`,
  fingerprintKey: (merchantId: string) => `tessera/v1/fingerprint-key/${merchantId}`,
  card: (merchantId: string, token: string, version: number) => `tessera/v1/card/${merchantId}/${token}/${version}`,
  cvc: (merchantId: string, token: string, version: number) => `tessera/v1/cvc/${merchantId}/${token}/${version}`,
  /** A stored idempotent response that carries a key (scope and Idempotency-Key). */
  idempotentResponse: (context: string) => `tessera/v1/idempotent-response/${context}`,
};
