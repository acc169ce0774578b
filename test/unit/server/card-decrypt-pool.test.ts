/**
 * The card decrypt pool (token batches' cards, opened on worker threads):
 * each card comes back as its own, a card the vault refuses comes back as
 * its refusal, and while API requests are in flight (`throttled`) the pool
 * still opens every card, one at a time.
 */
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { VaultError } from '../../../server/errors.ts';
import { CardDecryptPool, DecryptPoolError } from '../../../server/keys/card-decrypt-pool.ts';
import { cardPlaintext, encryptCard, randomCard } from '../../support/cards.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KID = 'pool-test';
const jwk = { ...(await exportJWK(publicKey)), kid: KID };
const encrypt = (number: string) => encryptCard('', cardPlaintext({ number, cvc: '123' }), { key: jwk });

let pool: CardDecryptPool | undefined;
afterEach(() => pool?.close());

const newPool = (threads: number, throttled?: () => boolean) => (pool = new CardDecryptPool({ threads, log: pino({ level: 'silent' }), ...(throttled && { throttled }) }));

describe('the card decrypt pool', () => {
  it('gives each card back as its own, on several threads', async () => {
    newPool(2);
    const numbers = Array.from({ length: 9 }, () => randomCard());
    const jwes = await Promise.all(numbers.map(encrypt));
    const opened = await Promise.all(jwes.map((jwe) => pool!.open(jwe, KID, privateKey)));
    expect(opened.map((card) => card.number)).toEqual(numbers);
    expect(opened.map((card) => card.cvc)).toEqual(numbers.map(() => '123'));
  });

  it('opens every card, in the order sent, while requests are in flight', async () => {
    let asked = 0;
    newPool(2, () => (asked++, true));
    const numbers = Array.from({ length: 5 }, () => randomCard());
    const jwes = await Promise.all(numbers.map(encrypt));
    const order: string[] = [];
    await Promise.all(jwes.map((jwe) => pool!.open(jwe, KID, privateKey).then((card) => order.push(card.number))));
    // One card at a time: each came out before the next went in, so the order is the order sent.
    expect(order).toEqual(numbers);
    expect(asked).toBeGreaterThan(0);
  });

  it('answers a card it cannot open with the refusal the API would give, and opens the next', async () => {
    newPool(1);
    const [good, bad] = await Promise.all([encrypt(randomCard()), encrypt(randomCard())]);
    const refused = pool!.open(bad!, KID, other.privateKey, 'items[1].card');
    await expect(refused).rejects.toBeInstanceOf(VaultError);
    await expect(refused).rejects.toMatchObject({ code: 'invalid_jwe', param: 'items[1].card' });
    await expect(pool!.open(good!, KID, privateKey)).resolves.toMatchObject({ cvc: '123' });
  });

  it('refuses work once closed, as a failure of the pool, not of the card', async () => {
    newPool(1);
    await pool!.close();
    await expect(pool!.open(await encrypt(randomCard()), KID, privateKey)).rejects.toBeInstanceOf(DecryptPoolError);
  });
});
