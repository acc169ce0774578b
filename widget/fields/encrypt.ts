/**
 * Card data leaves the fields only as a compact JWE to the vault's public key
 * (api.md, "Card encryption"): ECDH-ES+A256KW with A256GCM, `kid` and `iat`
 * in the protected header.
 *
 * Built from WebCrypto primitives rather than jose: jose's encrypt path
 * carries every JWE algorithm (≈7 KB gzip) where the fields need exactly one.
 * Every step is a WebCrypto call; the code here only assembles RFC 7516/7518
 * framing. A unit test decrypts this module's output with jose and with the
 * vault's own decrypt (node:crypto), so any framing mistake fails loudly
 * rather than weakening anything.
 *
 * Everything but the content encryption is done ahead, while the shopper
 * types: the vault's key is imported once, and the next message's ephemeral
 * key, key-encryption key and wrapped content key are ready before they are
 * needed. Each is used for one message only.
 */
import type { VaultEncryptionKey } from './config.ts';

/** The plaintext the vault accepts, keys in this order; optional keys are omitted when not collected. */
export interface CardPlaintext {
  number?: string;
  exp_month?: number;
  exp_year?: number;
  cvc?: string;
  name?: string;
  postal_code?: string;
}

/** Encrypts one plaintext (already JSON) per call, each under keys of its own. */
export type CardEncrypter = (plaintextJson: string) => Promise<string>;

const ALG = 'ECDH-ES+A256KW';
const ECDH = { name: 'ECDH', namedCurve: 'P-256' } as const;
const utf8 = (text: string) => new TextEncoder().encode(text);
const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const uint32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The key-encryption key: Concat KDF (RFC 7518 §4.6.2, one SHA-256 round) over
 * the ECDH shared secret, with AlgorithmID = "ECDH-ES+A256KW", empty PartyUInfo
 * and PartyVInfo, and SuppPubInfo = 256 bits.
 */
async function keyEncryptionKey(sharedSecret: ArrayBuffer): Promise<CryptoKey> {
  const algorithmId = utf8(ALG);
  const otherInfo = concat(uint32(algorithmId.length), algorithmId, uint32(0), uint32(0), uint32(256));
  const derived = await crypto.subtle.digest('SHA-256', concat(uint32(1), new Uint8Array(sharedSecret), otherInfo));
  return crypto.subtle.importKey('raw', derived, 'AES-KW', false, ['wrapKey']);
}

/** The keys of one message: a fresh ephemeral key (ECDH-ES never reuses a shared secret) and a fresh content key. */
interface MessageKeys {
  epk: { x: string; y: string };
  cek: CryptoKey;
  encryptedKey: string;
}

async function messageKeys(vaultKey: CryptoKey): Promise<MessageKeys> {
  const { subtle } = crypto;
  const ephemeral = await subtle.generateKey(ECDH, true, ['deriveBits']);
  const [epk, kek, cek] = await Promise.all([
    subtle.exportKey('jwk', ephemeral.publicKey),
    subtle.deriveBits({ name: 'ECDH', public: vaultKey }, ephemeral.privateKey, 256).then(keyEncryptionKey),
    subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']),
  ]);
  const encryptedKey = base64url(new Uint8Array(await subtle.wrapKey('raw', cek, kek, 'AES-KW')));
  return { epk: { x: epk.x!, y: epk.y! }, cek, encryptedKey };
}

/** An encrypter for the vault's key `jwk`; it starts preparing the first message's keys at once. */
export function cardEncrypter(jwk: VaultEncryptionKey): CardEncrypter {
  const vaultKey = crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, ECDH, false, []);
  const prepare = () => vaultKey.then(messageKeys);
  let next = prepare();
  // A failure here surfaces from the encryption that needs these keys.
  next.catch(() => undefined);

  return async (plaintextJson) => {
    const keys = next;
    next = prepare();
    next.catch(() => undefined);
    const { epk, cek, encryptedKey } = await keys;
    const header = base64url(
      utf8(
        JSON.stringify({
          alg: ALG,
          enc: 'A256GCM',
          kid: jwk.kid,
          iat: Math.floor(Date.now() / 1000),
          epk: { kty: 'EC', crv: 'P-256', x: epk.x, y: epk.y },
        }),
      ),
    );
    const iv = crypto.getRandomValues(new Uint8Array(12));
    // The protected header is the additional authenticated data (RFC 7516 §5.1).
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: utf8(header), tagLength: 128 }, cek, utf8(plaintextJson)),
    );
    return [header, encryptedKey, base64url(iv), base64url(sealed.slice(0, -16)), base64url(sealed.slice(-16))].join('.');
  };
}
