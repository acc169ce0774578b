/**
 * Review finding 5: with unique tokens on, the publishable key could
 * overwrite another customer's saved card and learn that a card is saved —
 * tokenizing a saved card number through the fields returned the victim's
 * token with `reusable: true` and replaced its expiry, name and CVC.
 *
 * Now the fields' answer for a known card looks exactly like the answer for
 * a new one (same token name, no `existing`, `reusable` as asked), and the
 * new details wait until an approved authorization or verification proves
 * them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, type TestMerchant } from '../../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard, nextYear } from '../../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/** American Express CVCs have 4 digits, the others 3. */
const cvcFor = (number: string) => (number.startsWith('3') ? '1234' : '123');

describe.each(storageKinds())('unique tokens through the card fields on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'unique-takeover' });
    shop = await createMerchant(vault, { name: 'Unique Shop', uniqueTokens: true });
  });
  afterAll(() => vault?.close());

  /** A customer's saved card, made by the merchant's server. */
  async function savedCard(number: string, name: string) {
    const saved = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext({ number, cvc: cvcFor(number) }, { name, exp_month: 12, exp_year: nextYear() })), customer: 'cus_victim' },
    });
    expect(saved.status).toBe(201);
    return saved.body;
  }

  /** What the card fields post, from the shopper's (or an attacker's) browser. */
  async function throughFields(number: string, details: { name: string; exp_month: number; exp_year: number }, reusable = false) {
    return api(vault.url, 'POST', '/v1/tokens', {
      json: {
        key: shop.publishableKey,
        session: await openSession(vault.url, shop),
        card: await encryptCard(vault.url, cardPlaintext({ number, cvc: cvcFor(number) }, details)),
        reusable,
      },
    });
  }

  const read = async (token: string) => (await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: shop.secretKey })).body;

  it('answers a known card exactly as a new one, and leaves the saved card as it was', async () => {
    const victim = await savedCard(CARDS.visa.number, 'Victim Person');
    const attacker = { name: 'Mallory', exp_month: 3, exp_year: nextYear() + 3 };

    const known = await throughFields(CARDS.visa.number, attacker, false);
    const fresh = await throughFields(CARDS.amex.number, attacker, false);
    expect(known.status).toBe(fresh.status);
    // Same shape, nothing that says the card was known: `reusable` as asked, the expiry as typed.
    expect(Object.keys(known.body).sort()).toEqual(Object.keys(fresh.body).sort());
    expect(known.body).toEqual({ token: victim.token, reusable: false, card: { brand: 'visa', last4: '4242', exp_month: 3, exp_year: nextYear() + 3 } });

    // The saved card keeps its expiry, name and saved status.
    expect(await read(victim.token)).toMatchObject({
      reusable: true,
      card: { exp_month: 12, exp_year: nextYear(), name: 'Victim Person' },
    });
  });

  it('keeps the new details once an approved payment proves them (a shopper with a reissued card)', async () => {
    const saved = await savedCard(CARDS.mastercard.number, 'Ada Lovelace');
    const reissued = await throughFields(CARDS.mastercard.number, { name: 'Ada King', exp_month: 8, exp_year: nextYear() + 4 }, true);
    expect(reissued.body.token).toBe(saved.token);

    const paid = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: saved.token, amount: 1500, currency: 'EUR' } });
    expect(paid.status).toBe(201);
    expect(await read(saved.token)).toMatchObject({ reusable: true, card: { exp_month: 8, exp_year: nextYear() + 4, name: 'Ada King' } });
  });

  it('drops details a declined payment did not prove, and the saved card stays as it was', async () => {
    const saved = await savedCard(SANDBOX_CARDS.insufficient_funds, 'Grace Hopper');
    await throughFields(SANDBOX_CARDS.insufficient_funds, { name: 'Mallory', exp_month: 1, exp_year: nextYear() + 5 });
    const declined = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: saved.token, amount: 1500, currency: 'EUR' } });
    expect(declined.status).toBe(402);
    expect(await read(saved.token)).toMatchObject({ card: { exp_month: 12, exp_year: nextYear(), name: 'Grace Hopper' } });
    expect((await vault.vault.db.query('select 1 from token_pending_cards where token = $1', [saved.token])).rowCount).toBe(0);
  });

  it('keeps the new details once an approved account verification proves them', async () => {
    const saved = await savedCard('371449635398431', 'Katherine Johnson');
    await throughFields('371449635398431', { name: 'Katherine G Johnson', exp_month: 6, exp_year: nextYear() + 2 }, true);
    const verified = await api(vault.url, 'POST', `/v1/tokens/${saved.token}/verify`, { key: shop.secretKey, json: {} });
    expect(verified.body.verification).toEqual({ status: 'succeeded', decline_code: null });
    expect(await read(saved.token)).toMatchObject({ card: { exp_month: 6, exp_year: nextYear() + 2, name: 'Katherine G Johnson' } });
  });

  it('stores the same answer for an Idempotency-Key retry, naming the card’s token', async () => {
    const saved = await savedCard('5105105105105100', 'Dorothy Vaughan');
    const json = {
      key: shop.publishableKey,
      session: await openSession(vault.url, shop),
      card: await encryptCard(vault.url, cardPlaintext({ number: '5105105105105100', cvc: '999' })),
      reusable: true,
    };
    const headers = { 'Idempotency-Key': 'fields-retry-unique' };
    const first = await api(vault.url, 'POST', '/v1/tokens', { json, headers });
    const again = await api(vault.url, 'POST', '/v1/tokens', { json, headers });
    expect(first.body.token).toBe(saved.token);
    expect(again.text).toBe(first.text);
  });
});
