/**
 * Card data leaves the fields only as a compact JWE to the vault's public key
 * (api.md, "Card encryption"): ECDH-ES+A256KW with A256GCM, `kid` and `iat`
 * in the protected header.
 */
import { CompactEncrypt } from 'jose/jwe/compact/encrypt';
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

export async function encryptForVault(plaintext: CardPlaintext, jwk: VaultEncryptionKey): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(plaintext)))
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: jwk.kid, iat: Math.floor(Date.now() / 1000) })
    .encrypt(await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, { name: 'ECDH', namedCurve: 'P-256' }, true, []));
}
