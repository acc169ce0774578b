import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { CardAttempts } from './card-attempts.ts';
import type { ShopDb, ShopQueryable } from './db.ts';
import type { SecretKeyRolls } from './key-rolls.ts';
import type { LoginThrottle } from './login-throttle.ts';
import type { Sessions } from './sessions.ts';
import type { VaultClient } from './vault-client.ts';
import type { ShopWebhookEndpoint } from './webhook-endpoint.ts';

/** What every part of the shop's backend works with. */
export interface Shop {
  db: ShopDb;
  vault: VaultClient;
  sessions: Sessions;
  /** Limits on card attempts (payments and verifications) per order, session and client. */
  cardAttempts: CardAttempts;
  /** Lockout with backoff for the shoppers' and the dashboard's sign-ins. */
  logins: LoginThrottle;
  /** The dashboard's secret key rolls. */
  keyRolls: SecretKeyRolls;
  /** The shop's webhook endpoint at the vault, and the secret its receiver verifies with. */
  webhookEndpoint: ShopWebhookEndpoint;
  log: Logger;
}

type ShopIdPrefix = 'usr' | 'ord' | 'card' | 'roll';

/** 128 bits in 28 lower-case letters. */
const ID_LETTERS = 28;

/**
 * Ids the shop makes: a prefix and 128 random bits, in letters only. User
 * ids travel to the vault as a token's `customer` and order ids as a
 * payment's `reference`, which the vault refuses when they hold anything
 * that looks like a card number: hex ids did, now and then (a run of 13+
 * digits that passes Luhn).
 */
export function newShopId(prefix: ShopIdPrefix): string {
  return `${prefix}_${randomLetters()}`;
}

/**
 * An Idempotency-Key for one call to the vault, e.g. `webhook-create-…`:
 * letters only, as ids are, because the vault refuses a key holding
 * anything like a card number — a UUID's dashed hex groups did, now and then.
 */
export function newIdempotencyKey(purpose: string): string {
  return `${purpose}-${randomLetters()}`;
}

/** The Idempotency-Key for a page's request `requestId` (a UUID the page drew, the same on its retries): the same letters every time. */
export function idempotencyKeyFor(purpose: string, requestId: string): string {
  const hex = createHash('sha256').update(requestId).digest('hex').slice(0, 32);
  return `${purpose}-${hex.replace(/[0-9a-f]/g, (digit) => String.fromCharCode(97 + parseInt(digit, 16)))}`;
}

function randomLetters(): string {
  let n = BigInt(`0x${randomBytes(16).toString('hex')}`);
  let letters = '';
  for (let i = 0; i < ID_LETTERS; i++) {
    letters = String.fromCharCode(97 + Number(n % 26n)) + letters;
    n /= 26n;
  }
  return letters;
}

/** What `newShopId(prefix)` makes (or made before, in hex), for validating ids that come back from a page. */
export const shopIdPattern = (prefix: ShopIdPrefix): RegExp => new RegExp(`^${prefix}_(?:[a-z]{${ID_LETTERS}}|[0-9a-f]{32})$`);

export async function setting<T>(q: ShopQueryable, name: string): Promise<T> {
  const { rows } = await q.query<{ value: T }>('select value from settings where name = $1', [name]);
  return rows[0]!.value;
}
