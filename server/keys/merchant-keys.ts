import { createHmac, randomBytes } from 'node:crypto';
import { aad, open, seal } from './envelope.ts';
import type { MasterKey } from './master-key.ts';

/** What a merchant row holds of its keys: both sealed under the master key. */
export interface MerchantKeyMaterial {
  id: string;
  data_key_sealed: Uint8Array;
  data_key_version: number;
  fingerprint_key_sealed: Uint8Array;
}

const KEY_BYTES = 32;

/**
 * Per-merchant keys: a data key (AES-256-GCM) that seals stored cards, and a
 * separate fingerprint key (HMAC-SHA-256) so a fingerprint is stable within a
 * merchant but useless for matching cards across merchants. Unwrapped keys
 * are cached in memory: unwrapping on every request would be wasted work.
 */
export class MerchantKeys {
  readonly #master: MasterKey;
  readonly #cache = new Map<string, Buffer>();

  constructor(master: MasterKey) {
    this.#master = master;
  }

  /** Fresh sealed keys for a new merchant. */
  generate(merchantId: string): { dataKeySealed: Buffer; fingerprintKeySealed: Buffer; dataKeyVersion: number } {
    const dataKeyVersion = 1;
    return {
      dataKeySealed: this.#master.wrap(randomBytes(KEY_BYTES), aad.dataKey(merchantId, dataKeyVersion)),
      fingerprintKeySealed: this.#master.wrap(randomBytes(KEY_BYTES), aad.fingerprintKey(merchantId)),
      dataKeyVersion,
    };
  }

  fingerprint(merchant: MerchantKeyMaterial, cardNumber: string): string {
    const key = this.#unwrap(`fp/${merchant.id}`, merchant.fingerprint_key_sealed, aad.fingerprintKey(merchant.id));
    return `fp_${createHmac('sha256', key).update(cardNumber, 'utf8').digest('base64url')}`;
  }

  sealCard(merchant: MerchantKeyMaterial, token: string, plaintext: Uint8Array): Buffer {
    return seal(this.#dataKey(merchant), plaintext, aad.card(merchant.id, token, merchant.data_key_version));
  }

  openCard(merchant: MerchantKeyMaterial, token: string, version: number, sealed: Uint8Array): Buffer {
    return open(this.#dataKey(merchant, version), sealed, aad.card(merchant.id, token, version));
  }

  sealCvc(merchant: MerchantKeyMaterial, token: string, cvc: string): Buffer {
    return seal(this.#dataKey(merchant), Buffer.from(cvc, 'utf8'), aad.cvc(merchant.id, token, merchant.data_key_version));
  }

  openCvc(merchant: MerchantKeyMaterial, token: string, version: number, sealed: Uint8Array): string {
    return open(this.#dataKey(merchant, version), sealed, aad.cvc(merchant.id, token, version)).toString('utf8');
  }

  #dataKey(merchant: MerchantKeyMaterial, version = merchant.data_key_version): Buffer {
    if (version !== merchant.data_key_version) throw new Error(`data key version ${version} is not available`);
    return this.#unwrap(`data/${merchant.id}/${version}`, merchant.data_key_sealed, aad.dataKey(merchant.id, version));
  }

  #unwrap(cacheKey: string, sealed: Uint8Array, context: string): Buffer {
    let key = this.#cache.get(cacheKey);
    if (key === undefined) {
      key = this.#master.unwrap(sealed, context);
      this.#cache.set(cacheKey, key);
    }
    return key;
  }
}
