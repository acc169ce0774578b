/**
 * The card decrypt pool's lanes: a tokenization's card (urgent: a shopper
 * waits) goes before the token batch items queued ahead of it, and is not
 * held back while API requests are in flight, as batch items are.
 */
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CardDecryptPool } from '../../../server/keys/card-decrypt-pool.ts';
import { cardPlaintext, encryptCard, randomCard } from '../../support/cards.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KID = 'pool-test';
const jwk = { ...(await exportJWK(publicKey)), kid: KID };
const encrypt = (number: string) => encryptCard('', cardPlaintext({ number, cvc: '123' }), { key: jwk });

let pool: CardDecryptPool | undefined;
afterEach(() => pool?.close());

/** Opens the cards in the order given, urgent where marked; resolves with the numbers in the order they came out. */
async function completionOrder(cards: { number: string; urgent: boolean }[], throttled: () => boolean): Promise<string[]> {
  pool = new CardDecryptPool({ threads: 1, log: pino({ level: 'silent' }), throttled });
  const jwes = await Promise.all(cards.map((card) => encrypt(card.number)));
  const order: string[] = [];
  await Promise.all(
    cards.map((card, i) => pool!.open(jwes[i]!, KID, privateKey, 'card', { urgent: card.urgent }).then((opened) => order.push(opened.number))),
  );
  return order;
}

describe('the card decrypt pool', () => {
  it('opens a tokenization’s card before the batch items queued ahead of it', async () => {
    const batch = Array.from({ length: 6 }, () => ({ number: randomCard(), urgent: false }));
    const urgent = { number: randomCard(), urgent: true };
    const order = await completionOrder([...batch, urgent], () => false);
    expect(order).toHaveLength(7);
    // In arrival order it would come out last; two batch items were already on the thread when it came.
    expect(order.indexOf(urgent.number)).toBeLessThan(5);
  });

  it('does not hold a tokenization’s card back while requests are in flight, as it holds batch items', async () => {
    const batch = Array.from({ length: 4 }, () => ({ number: randomCard(), urgent: false }));
    const urgent = { number: randomCard(), urgent: true };
    const order = await completionOrder([...batch, urgent], () => true);
    // Throttled, batch items go one at a time; the urgent card joins the first at once.
    expect(order.indexOf(urgent.number)).toBeLessThan(2);
  });

  it('is warm once a thread it started has loaded, before any card was sent to it', async () => {
    pool = new CardDecryptPool({ threads: 1, log: pino({ level: 'silent' }) });
    expect(pool.warm).toBe(false);
    pool.warmUp();
    await vi.waitFor(() => expect(pool!.warm).toBe(true), { timeout: 20_000 });
  });
});
