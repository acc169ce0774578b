/**
 * Review finding 8 (the vault's half): a card tester tried card after card
 * and read each decline reason. The vault now counts declines per
 * card-fields session, per client IP and per card, and past a limit answers
 * 429 without asking the acquirer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, type TestMerchant } from '../../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard } from '../../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

describe.each(storageKinds())('card-testing limits in the vault on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({
      storage,
      name: 'card-testing',
      env: { TESSERA_DECLINES_PER_SESSION: '3', TESSERA_DECLINES_PER_IP: '6', TESSERA_DECLINES_PER_CARD: '4' },
    });
  });
  afterAll(() => vault?.close());

  const acquirerCalls = async () =>
    (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from sandbox_acquirer_authorizations')).rows[0]!.n;

  async function fieldsToken(session: string, number: string, merchant = shop) {
    return api(vault.url, 'POST', '/v1/tokens', {
      json: { key: merchant.publishableKey, session, card: await encryptCard(vault.url, cardPlaintext({ number, cvc: '123' })) },
    });
  }
  const pay = (token: string, merchant = shop) =>
    api(vault.url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token, amount: 1000, currency: 'EUR' } });

  it('refuses a session past 3 declines with 429 and Retry-After, for payments and new tokens alike, without reaching the acquirer', async () => {
    shop = await createMerchant(vault, { name: 'Session Limit Shop' });
    const session = await openSession(vault.url, shop);
    const good = await fieldsToken(session, CARDS.visa.number);
    expect(good.status).toBe(201);
    const declining = [SANDBOX_CARDS.generic_decline, SANDBOX_CARDS.insufficient_funds, SANDBOX_CARDS.expired_card];
    for (const number of declining) {
      const token = await fieldsToken(session, number);
      expect(token.status).toBe(201);
      expect((await pay(token.body.token)).status).toBe(402);
    }
    const before = await acquirerCalls();

    const fourth = await fieldsToken(session, SANDBOX_CARDS.incorrect_cvc);
    expect({ status: fourth.status, code: fourth.body.error?.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect(Number(fourth.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(fourth.text).not.toMatch(/insufficient|expired|incorrect/);

    // A token the session made before the limit cannot be charged either.
    const refused = await pay(good.body.token);
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect(await acquirerCalls()).toBe(before);
  });

  it('refuses a card past 4 declines, however many tokens and merchants-side calls it takes', async () => {
    const merchant = await createMerchant(vault, { name: 'Card Limit Shop' });
    const token = async () =>
      (
        await api(vault.url, 'POST', '/v1/tokens', {
          key: merchant.secretKey,
          json: { card: await encryptCard(vault.url, cardPlaintext({ number: SANDBOX_CARDS.generic_decline, cvc: '123' })) },
        })
      ).body.token as string;
    for (let i = 0; i < 4; i++) expect((await pay(await token(), merchant)).status).toBe(402);
    const fifth = await pay(await token(), merchant);
    expect({ status: fifth.status, code: fifth.body.error?.code }).toEqual({ status: 429, code: 'rate_limited' });

    // Another card of the same merchant is not affected.
    const visa = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()) } });
    expect((await pay(visa.body.token, merchant)).status).toBe(201);
  });

  it('counts failed account verifications as declines of the card', async () => {
    const merchant = await createMerchant(vault, { name: 'Verify Limit Shop' });
    const verifyNew = async () =>
      api(vault.url, 'POST', '/v1/tokens', {
        key: merchant.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext({ number: SANDBOX_CARDS.insufficient_funds, cvc: '123' })), verify: true },
      });
    for (let i = 0; i < 4; i++) expect((await verifyNew()).body.verification).toEqual({ status: 'failed', decline_code: 'insufficient_funds' });
    const fifth = await verifyNew();
    expect({ status: fifth.status, code: fifth.body.error?.code }).toEqual({ status: 429, code: 'rate_limited' });
  });

  it('refuses a client IP past 6 declines across several sessions', async () => {
    // A vault of its own: every test here tokenizes from 127.0.0.1.
    const own = await startTestVault({
      storage,
      name: 'card-testing-ip',
      env: { TESSERA_DECLINES_PER_SESSION: '3', TESSERA_DECLINES_PER_IP: '6', TESSERA_DECLINES_PER_CARD: '4' },
    });
    try {
      const merchant = await createMerchant(own, { name: 'IP Limit Shop' });
      const tokenize = async (session: string, number: string) =>
        api(own.url, 'POST', '/v1/tokens', {
          json: { key: merchant.publishableKey, session, card: await encryptCard(own.url, cardPlaintext({ number, cvc: '123' })) },
        });
      // Two declines per session stay under the session limit; three sessions reach the IP's.
      for (const numbers of [
        [SANDBOX_CARDS.generic_decline, SANDBOX_CARDS.insufficient_funds],
        [SANDBOX_CARDS.expired_card, SANDBOX_CARDS.incorrect_cvc],
        [SANDBOX_CARDS.generic_decline, SANDBOX_CARDS.expired_card],
      ]) {
        const session = await openSession(own.url, merchant);
        for (const number of numbers) {
          const token = await tokenize(session, number);
          expect(token.status, token.text).toBe(201);
          const paid = await api(own.url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token: token.body.token, amount: 1000, currency: 'EUR' } });
          expect(paid.status).toBe(402);
        }
      }
      const fresh = await tokenize(await openSession(own.url, merchant), CARDS.mastercard.number);
      expect({ status: fresh.status, code: fresh.body.error?.code }).toEqual({ status: 429, code: 'rate_limited' });
    } finally {
      await own.close();
    }
  });
});
