import { pooledRandomBytes } from '../lib/random.ts';
import { aad, open, seal } from './envelope.ts';
import type { MerchantKeyMaterial, MerchantKeys } from './merchant-keys.ts';

/** What is kept of a card, sealed: the number and, when given, the postal code. */
export interface CardSecret {
  number: string;
  postal_code?: string | undefined;
}

/** A card as a row stores it. A null `card_key_sealed` is a card sealed directly under the data key, before per-token keys. */
export interface StoredCard {
  card_sealed: Uint8Array;
  card_key_sealed: Uint8Array | null;
  data_key_version: number;
}

export interface SealedCard {
  card_sealed: Buffer;
  card_key_sealed: Buffer;
  data_key_version: number;
}

/**
 * Whose card a sealed card is: a token's, or details waiting to be proven for
 * a unique token (`pending`), known only by the card's fingerprint until then.
 */
export type CardOwner = { token: string } | { pendingFingerprint: string };

const KEY_BYTES = 32;

/**
 * Seals each card under its own random card key, and wraps that key under
 * the merchant's current data key, bound to the token. Destroying the card
 * key destroys the card (crypto-shredding): a deleted token's key is erased
 * with it, and a data key rotation re-encrypts every live card so the old
 * version, and with it any copy of an erased card key left in old row
 * versions, the WAL or a backup, can be destroyed.
 */
export class CardSealer {
  readonly #keys: MerchantKeys;

  constructor(keys: MerchantKeys) {
    this.#keys = keys;
  }

  seal(merchant: MerchantKeyMaterial, owner: CardOwner, secret: CardSecret): SealedCard {
    const cardKey = pooledRandomBytes(KEY_BYTES);
    const stored = JSON.stringify({ number: secret.number, ...(secret.postal_code === undefined ? {} : { postal_code: secret.postal_code }) });
    const sealed = {
      card_sealed: seal(cardKey, Buffer.from(stored, 'utf8'), aad.card(merchant.id)),
      card_key_sealed: seal(this.#keys.currentDataKey(merchant), cardKey, cardKeyAad(merchant.id, owner, merchant.data_key_version)),
      data_key_version: merchant.data_key_version,
    };
    cardKey.fill(0);
    return sealed;
  }

  async open(merchant: MerchantKeyMaterial, owner: CardOwner, stored: StoredCard): Promise<CardSecret> {
    const dataKey = await this.#keys.dataKey(merchant, stored.data_key_version);
    let plaintext: Buffer;
    if (stored.card_key_sealed === null) {
      if (!('token' in owner)) throw new Error('a card sealed before per-token keys belongs to a token');
      plaintext = open(dataKey, stored.card_sealed, aad.legacyCard(merchant.id, owner.token, stored.data_key_version));
    } else {
      const cardKey = open(dataKey, stored.card_key_sealed, cardKeyAad(merchant.id, owner, stored.data_key_version));
      plaintext = open(cardKey, stored.card_sealed, aad.card(merchant.id));
      cardKey.fill(0);
    }
    return JSON.parse(plaintext.toString('utf8')) as CardSecret;
  }

  /** Opens a card and seals it again under a fresh card key and the current data key, for `to` (a rotation, or pending details proven). */
  async reseal(merchant: MerchantKeyMaterial, from: CardOwner, stored: StoredCard, to: CardOwner): Promise<SealedCard> {
    return this.seal(merchant, to, await this.open(merchant, from, stored));
  }
}

function cardKeyAad(merchantId: string, owner: CardOwner, version: number): string {
  return 'token' in owner ? aad.cardKey(merchantId, owner.token, version) : aad.pendingCardKey(merchantId, owner.pendingFingerprint, version);
}
