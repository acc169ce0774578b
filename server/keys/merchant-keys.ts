import { createHmac, randomBytes } from 'node:crypto';
import type { Queryable } from '../storage/db.ts';
import { aad } from './envelope.ts';
import type { MasterKey } from './master-key.ts';

/** What a merchant row holds of its keys: the current data key and the fingerprint key, both wrapped under the master key. */
export interface MerchantKeyMaterial {
  id: string;
  data_key_sealed: Uint8Array;
  data_key_version: number;
  fingerprint_key_sealed: Uint8Array;
}

const KEY_BYTES = 32;

/**
 * Per-merchant keys: versioned data keys (AES-256-GCM) that wrap each
 * token's own card key, and a fingerprint key (HMAC-SHA-256) so a
 * fingerprint is stable within a merchant but useless for matching cards
 * across merchants. Unwrapped keys are cached in memory; a data key version
 * that is not the current one is read from `merchant_data_keys` when needed
 * (a rotation's re-encryption, or a card sealed before it).
 */
export class MerchantKeys {
  readonly #master: MasterKey;
  readonly #db: Queryable;
  readonly #cache = new Map<string, Buffer>();

  constructor(master: MasterKey, db: Queryable) {
    this.#master = master;
    this.#db = db;
  }

  /** Fresh wrapped keys for a new merchant (data key version 1). */
  generate(merchantId: string): { dataKeySealed: Buffer; fingerprintKeySealed: Buffer; dataKeyVersion: number } {
    return {
      dataKeySealed: this.wrapNewDataKey(merchantId, 1),
      fingerprintKeySealed: this.#master.wrap(randomBytes(KEY_BYTES), aad.fingerprintKey(merchantId)),
      dataKeyVersion: 1,
    };
  }

  /** A new random data key for `version`, wrapped under the master key. */
  wrapNewDataKey(merchantId: string, version: number): Buffer {
    return this.#master.wrap(randomBytes(KEY_BYTES), aad.dataKey(merchantId, version));
  }

  fingerprint(merchant: MerchantKeyMaterial, cardNumber: string): string {
    const key = this.#unwrap(`fp/${merchant.id}`, merchant.fingerprint_key_sealed, aad.fingerprintKey(merchant.id));
    return `fp_${createHmac('sha256', key).update(cardNumber, 'utf8').digest('base64url')}`;
  }

  /** The data key new card keys are wrapped under. */
  currentDataKey(merchant: MerchantKeyMaterial): Buffer {
    return this.#unwrap(dataKeyCacheKey(merchant.id, merchant.data_key_version), merchant.data_key_sealed, aad.dataKey(merchant.id, merchant.data_key_version));
  }

  /** The data key of `version`, current or not; throws when that version was destroyed. */
  async dataKey(merchant: MerchantKeyMaterial, version: number): Promise<Buffer> {
    if (version === merchant.data_key_version) return this.currentDataKey(merchant);
    const cached = this.#cache.get(dataKeyCacheKey(merchant.id, version));
    if (cached !== undefined) return cached;
    const { rows } = await this.#db.query<{ key_sealed: Uint8Array }>(
      'select key_sealed from merchant_data_keys where merchant_id = $1 and version = $2',
      [merchant.id, version],
    );
    if (rows[0] === undefined) throw new Error(`data key version ${version} of ${merchant.id} was destroyed`);
    return this.#unwrap(dataKeyCacheKey(merchant.id, version), rows[0].key_sealed, aad.dataKey(merchant.id, version));
  }

  /** Forgets a destroyed data key version. */
  forget(merchantId: string, version: number): void {
    this.#cache.get(dataKeyCacheKey(merchantId, version))?.fill(0);
    this.#cache.delete(dataKeyCacheKey(merchantId, version));
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

const dataKeyCacheKey = (merchantId: string, version: number) => `data/${merchantId}/${version}`;
