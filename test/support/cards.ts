import { CompactEncrypt, importJWK, type CryptoKey, type JWK } from 'jose';
import { detectBrand } from '../../server/cards/card.ts';
import { passesLuhn } from '../../widget/shared/luhn.ts';

/**
 * Test cards. Their CVCs are the leak checks' canaries (leaks.ts): each
 * begins with 0, as no count, amount, port, duration or sequence number
 * written as text does and no JSON number can, so a value equal to one is
 * this CVC and nothing else.
 */
export const CARDS = {
  visa: { number: '4242424242424242', spaced: '4242 4242 4242 4242', cvc: '079', brand: 'visa', last4: '4242' },
  mastercard: { number: '5555555555554444', spaced: '5555 5555 5555 4444', cvc: '098', brand: 'mastercard', last4: '4444' },
  amex: { number: '378282246310005', spaced: '3782 822463 10005', cvc: '0491', brand: 'american-express', last4: '0005' },
} as const;

/** The sandbox acquirer's test cards (api.md), all Visa (3-digit CVC), and what each one does. */
export const SANDBOX_CARDS = {
  generic_decline: '4000000000000002',
  insufficient_funds: '4000000000009995',
  expired_card: '4000000000000069',
  incorrect_cvc: '4000000000000127',
  acquirer_error: '4000000000000119',
  /** Approved while the cardholder is present; every merchant-initiated payment declined `insufficient_funds`. */
  merchant_initiated_declined: '4000000000000341',
  /** Approved while the cardholder is present; merchant-initiated payments declined and approved in turn, starting declined. */
  merchant_initiated_alternating: '4000000000003063',
} as const;

export interface CardPlaintext {
  number: string;
  exp_month: number;
  exp_year: number;
  cvc?: string;
  name?: string;
  postal_code?: string;
  [extra: string]: unknown;
}

/**
 * The `n`th Luhn-valid 16-digit number under `prefix` (say `411111`): each n
 * a card of its own, never a test card. The digit before the check digit is
 * always 8, so the last four (which the vault stores and echoes) never equal
 * a test CVC, the leak checks' canaries.
 */
export function numberedCard(prefix: string, n: number): string {
  const body = `${prefix}${String(n).padStart(14 - prefix.length, '0')}8`;
  if (body.length !== 15) throw new Error(`numberedCard: ${n} does not fit after ${prefix}`);
  for (let check = 0; check < 10; check++) if (passesLuhn(`${body}${check}`)) return `${body}${check}`;
  throw new Error('unreachable: one check digit always passes Luhn');
}

/**
 * A random Luhn-valid number the vault reads as Visa, as `numberedCard` (its
 * last four never a test CVC). About 1 in 9,000 numbers under 4 fall in
 * Elo's, Maestro's or Naranja's ranges (credit-card-type), which the sandbox
 * has no token service for: those are drawn again.
 */
export function randomCard(): string {
  for (;;) {
    const number = numberedCard('4', Math.floor(Math.random() * 10 ** 13));
    if (detectBrand(number).brand === 'visa') return number;
  }
}

export const nextYear = () => new Date().getUTCFullYear() + 1;

export function cardPlaintext(card: { number: string; cvc: string } = CARDS.visa, overrides: Partial<CardPlaintext> = {}): CardPlaintext {
  return { number: card.number, exp_month: 12, exp_year: nextYear(), cvc: card.cvc, name: 'Ada Lovelace', ...overrides };
}

export interface EncryptOptions {
  alg?: string;
  enc?: string;
  kid?: string | null;
  iat?: number | null;
  /** Extra protected header parameters (e.g. `zip`). */
  header?: Record<string, unknown>;
  /** Encrypt these exact bytes instead of JSON. */
  rawPlaintext?: Uint8Array;
  key?: JWK;
  /**
   * The sender's ephemeral ECDH private key, shared by many JWEs (see
   * encryptMany) instead of a new one per JWE. Each JWE still has its own
   * random content key and IV, so no two are alike.
   */
  ephemeralKey?: CryptoKey;
}

export async function fetchJwks(vaultUrl: string): Promise<JWK[]> {
  const response = await fetch(`${vaultUrl}/v1/keys`);
  return ((await response.json()) as { keys: JWK[] }).keys;
}

/** Encrypts card data to the vault's current key the way the card fields do, with knobs to break each rule. */
export async function encryptCard(vaultUrl: string, plaintext: CardPlaintext | object, options: EncryptOptions = {}): Promise<string> {
  const jwk = options.key ?? (await fetchJwks(vaultUrl))[0]!;
  const alg = options.alg ?? 'ECDH-ES+A256KW';
  const enc = options.enc ?? 'A256GCM';
  const header: Record<string, unknown> = { alg, enc, ...options.header };
  if (options.kid !== null) header['kid'] = options.kid ?? jwk.kid;
  if (options.iat !== null) header['iat'] = options.iat ?? Math.floor(Date.now() / 1000);
  const key = await importJWK({ ...jwk, alg }, alg);
  const bytes = options.rawPlaintext ?? new TextEncoder().encode(JSON.stringify(plaintext));
  const jwe = new CompactEncrypt(bytes).setProtectedHeader(header as { alg: string; enc: string });
  if (options.ephemeralKey !== undefined) jwe.setKeyManagementParameters({ epk: options.ephemeralKey });
  return jwe.encrypt(key);
}
