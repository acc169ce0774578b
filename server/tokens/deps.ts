import type { Acquirer } from '../acquirer/acquirer.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { CardOwner, SealedCard } from '../keys/card-keys.ts';
import type { CardSealer } from '../keys/card-keys.ts';
import type { CiphertextPolicy } from '../keys/card-ciphertext.ts';
import type { CvcKeys, SealedCvc } from '../keys/cvc-keys.ts';
import type { MerchantKeys } from '../keys/merchant-keys.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import type { Merchant } from '../merchants/service.ts';
import type { Db } from '../storage/db.ts';
import type { DeclineVelocity } from '../velocity/declines.ts';
import type { Card } from './card.ts';

/** What the services that open card data need: tokens, and payments too. */
export interface CardServiceDeps {
  db: Db;
  keyring: TransportKeyring;
  merchantKeys: MerchantKeys;
  cards: CardSealer;
  cvcs: CvcKeys;
  ciphertextPolicy: CiphertextPolicy;
  acquirer: Acquirer;
  audit: AuditLog;
  declines: DeclineVelocity;
}

/** A card's number and postal code sealed under a key of its own, and its CVC (if any) under its bucket's key. */
export interface SealedDetails {
  card: SealedCard;
  cvc: SealedCvc | null;
}

export async function sealDetails(
  deps: Pick<CardServiceDeps, 'cards' | 'cvcs'>,
  merchant: Merchant,
  owner: CardOwner,
  card: Pick<Card, 'number' | 'postal_code' | 'cvc'>,
  now = Date.now(),
): Promise<SealedDetails> {
  return {
    card: deps.cards.seal(merchant, owner, { number: card.number, postal_code: card.postal_code }),
    cvc: card.cvc === undefined ? null : await deps.cvcs.seal(merchant.id, owner, card.cvc, now),
  };
}
