import type { Acquirer } from '../acquirer/acquirer.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { CardOwner, SealedCard } from '../keys/card-keys.ts';
import type { CardSealer } from '../keys/card-keys.ts';
import type { CiphertextPolicy } from '../keys/card-ciphertext.ts';
import type { CvcKeys, SealedCvc } from '../keys/cvc-keys.ts';
import type { TokenStatements } from '../tokens/statements.ts';
import type { MerchantKeys } from '../keys/merchant-keys.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import type { Merchant } from '../merchants/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { Composite } from '../storage/functions.ts';
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
  /** Groups the tokenize statements that arrive while one runs; without it each goes alone. */
  tokenStatements?: TokenStatements | undefined;
  /**
   * Given (a vault process), a new token's background network token is
   * provisioned by this process, in memory, rather than by a job
   * (NetworkTokens.provisionInBackground).
   */
  networkTokens?: { provisionInBackground(id: string): void } | undefined;
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
  /** The transaction this sealing happens in, if any (see `CvcKeys.seal`). */
  within?: Queryable,
): Promise<SealedDetails> {
  return {
    card: deps.cards.seal(merchant, owner, { number: card.number, postal_code: card.postal_code }),
    cvc: card.cvc === undefined ? null : await deps.cvcs.seal(merchant.id, owner, card.cvc, now, within),
  };
}

/** A card's details as tessera_create_token and tessera_update_token take them (`tessera_card_details`). */
export function cardDetails(card: Pick<Card, 'brand' | 'last4' | 'exp_month' | 'exp_year' | 'name'>, fingerprint: string, sealed: SealedDetails): Composite {
  return new Composite('tessera_card_details', {
    brand: card.brand,
    last4: card.last4,
    exp_month: card.exp_month,
    exp_year: card.exp_year,
    cardholder_name: card.name ?? null,
    fingerprint,
    card_sealed: sealed.card.card_sealed,
    card_key_sealed: sealed.card.card_key_sealed,
    data_key_version: sealed.card.data_key_version,
    cvc_sealed: sealed.cvc?.cvc_sealed ?? null,
    cvc_bucket: sealed.cvc?.cvc_bucket ?? null,
    cvc_expires_at: sealed.cvc?.cvc_expires_at ?? null,
  });
}
