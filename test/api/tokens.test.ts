import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, uniqueLetters, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, nextYear, numberedCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('tokens on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let otherShop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'tokens' });
    shop = await createMerchant(vault);
    otherShop = await createMerchant(vault, { name: 'Other Shop' });
  });
  afterAll(() => vault?.close());

  async function tokenizeFromFields(merchant = shop, card = cardPlaintext(), extra: Record<string, unknown> = {}) {
    const session = await openSession(vault.url, merchant);
    return api(vault.url, 'POST', '/v1/tokens', {
      json: { key: merchant.publishableKey, session, card: await encryptCard(vault.url, card), reusable: true, ...extra },
    });
  }

  it('creates a token from the card fields and answers the browser with token, reusable and card metadata only', async () => {
    const response = await tokenizeFromFields(shop, cardPlaintext(CARDS.visa), { customer: 'cus_42' });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      token: expect.stringMatching(/^tok_[0-9A-Za-z]{22}$/),
      reusable: true,
      card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: nextYear() },
    });
  });

  it('repeats its answer to the card fields in the Tessera-Result header, on a 201 to the fields only', async () => {
    const created = await tokenizeFromFields(shop, cardPlaintext(CARDS.visa), { customer: 'cus_43' });
    expect(created.status).toBe(201);
    expect(created.headers.get('tessera-result')).toBe(created.text);
    expect(JSON.parse(created.headers.get('tessera-result')!)).toEqual(created.body);

    const refused = await tokenizeFromFields(shop, cardPlaintext(CARDS.visa, { number: '4242424242424241' }));
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 422, code: 'invalid_card_number' });
    expect(refused.headers.get('tessera-result')).toBeNull();

    const fromServer = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)) },
    });
    expect(fromServer.status).toBe(201);
    expect(fromServer.headers.get('tessera-result')).toBeNull();
  });

  it('reads a token created by the card fields back with the secret key, with brand, last 4, expiry and fingerprint', async () => {
    const created = await tokenizeFromFields(shop, cardPlaintext(CARDS.mastercard), { customer: 'cus_7' });
    const read = await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      token: created.body.token,
      reusable: true,
      customer: 'cus_7',
      decline_duplicates: false,
      card: {
        brand: 'mastercard',
        last4: '4444',
        exp_month: 12,
        exp_year: nextYear(),
        fingerprint: expect.stringMatching(/^fp_[A-Za-z0-9_-]{43}$/),
        name: 'Ada Lovelace',
      },
      used_at: null,
    });
    expect(JSON.stringify(read.body)).not.toContain(CARDS.mastercard.number);
  });

  it('creates a token from the merchant server with the secret key and reads it back', async () => {
    const created = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.amex)), customer: 'cus_9' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ reusable: true, customer: 'cus_9', card: { brand: 'american-express', last4: '0005' } });
    const read = await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey });
    expect(read.status).toBe(200);
    expect(read.body.card).toEqual(created.body.card);
  });

  it('gives each of many tokenizations sent at once its own card', async () => {
    const numbers = Array.from({ length: 12 }, (_, i) => numberedCard('4000', 7100 + i * 13));
    const cards = await Promise.all(numbers.map((number) => encryptCard(vault.url, cardPlaintext({ number, cvc: '123' }))));
    const created = await Promise.all(cards.map((card) => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } })));
    expect(created.map((response) => response.status)).toEqual(numbers.map(() => 201));
    expect(created.map((response) => response.body.card.last4)).toEqual(numbers.map((number) => number.slice(-4)));
  });

  it('does not let the publishable key read a token (403 secret_key_required)', async () => {
    const created = await tokenizeFromFields();
    const read = await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.publishableKey });
    expect(read.status).toBe(403);
    expect(read.body.error).toMatchObject({ type: 'authentication', code: 'secret_key_required' });
  });

  it("answers 404 to another merchant's secret key, for reads and deletes alike", async () => {
    const created = await tokenizeFromFields();
    const read = await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: otherShop.secretKey });
    expect(read.status).toBe(404);
    expect(read.body.error.code).toBe('token_not_found');
    const deleted = await api(vault.url, 'DELETE', `/v1/tokens/${created.body.token}`, { key: otherShop.secretKey });
    expect(deleted.status).toBe(404);
    expect((await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey })).status).toBe(200);
  });

  it('answers 401 without a key or with an unknown one', async () => {
    expect((await api(vault.url, 'GET', '/v1/tokens/tok_x')).body.error.code).toBe('unauthenticated');
    const unknown = await api(vault.url, 'GET', '/v1/tokens/tok_x', { key: 'sk_test_000000000000000000000000' });
    expect(unknown.status).toBe(401);
  });

  it('makes a single-use token when the shopper does not save the card, expiring in 30 minutes', async () => {
    const created = await tokenizeFromFields(shop, cardPlaintext(), { reusable: false });
    expect(created.status).toBe(201);
    expect(created.body.reusable).toBe(false);
    const read = await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey });
    const lifetimeMinutes = (Date.parse(read.body.expires_at) - Date.parse(read.body.created_at)) / 60_000;
    expect(lifetimeMinutes).toBeCloseTo(30, 0);
  });

  it('deletes a token: the stored card ciphertext is destroyed and the token answers 404 everywhere', async () => {
    const created = await tokenizeFromFields();
    const deleted = await api(vault.url, 'DELETE', `/v1/tokens/${created.body.token}`, { key: shop.secretKey });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ token: created.body.token, deleted: true });
    expect((await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey })).status).toBe(404);
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${created.body.token}`, { key: shop.secretKey })).status).toBe(404);
    const { rows } = await vault.vault.db.query<{ card_sealed: Uint8Array | null; cvc_sealed: Uint8Array | null }>(
      'select card_sealed, cvc_sealed from tokens where token = $1',
      [created.body.token],
    );
    expect(rows).toEqual([{ card_sealed: null, cvc_sealed: null }]);
  });

  it('names the token with the merchant-chosen value, and refuses a value already taken (409 token_value_taken)', async () => {
    const value = `member-${storage}-${uniqueLetters()}`;
    const create = async () =>
      api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()), value } });
    const first = await create();
    expect(first.status).toBe(201);
    expect(first.body.token).toBe(value);
    const second = await create();
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('token_value_taken');
  });

  it('refuses a merchant-chosen value or customer that looks like a card number (422 card_number_not_allowed)', async () => {
    for (const [param, json] of [
      ['value', { value: CARDS.visa.number }],
      ['customer', { customer: CARDS.visa.spaced }],
    ] as const) {
      const response = await api(vault.url, 'POST', '/v1/tokens', {
        key: shop.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext()), ...json },
      });
      expect(response.status).toBe(422);
      expect(response.body.error).toMatchObject({ code: 'card_number_not_allowed', param });
      expect(response.text).not.toContain(CARDS.visa.number);
      expect(response.text).not.toContain(CARDS.visa.spaced);
    }
  });

  it('runs an account verification when asked, reporting the sandbox outcome', async () => {
    const verify = async (number: string) =>
      api(vault.url, 'POST', '/v1/tokens', {
        key: shop.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext({ number, cvc: CARDS.visa.cvc })), verify: true },
      });
    const approved = await verify(CARDS.visa.number);
    expect(approved.body.verification).toEqual({ status: 'succeeded', decline_code: null });
    const declined = await verify('4000000000009995');
    expect(declined.status).toBe(201);
    expect(declined.body.verification).toEqual({ status: 'failed', decline_code: 'insufficient_funds' });
  });

  it('lists tokens by customer, newest first, with pagination', async () => {
    const customer = `cus_list_${storage}`;
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await tokenizeFromFields(shop, cardPlaintext(), { customer })).body.token);
    const firstPage = await api(vault.url, 'GET', `/v1/tokens?customer=${customer}&limit=2`, { key: shop.secretKey });
    expect(firstPage.body.data.map((t: { token: string }) => t.token)).toEqual([made[2], made[1]]);
    expect(firstPage.body.has_more).toBe(true);
    const secondPage = await api(vault.url, 'GET', `/v1/tokens?customer=${customer}&limit=2&starting_after=${made[1]}`, {
      key: shop.secretKey,
    });
    expect(secondPage.body.data.map((t: { token: string }) => t.token)).toEqual([made[0]]);
    expect(secondPage.body.has_more).toBe(false);
  });
});

// Several worker processes need PostgreSQL.
describe.runIf(storageKinds().includes('postgres'))('tokens on postgres, several worker processes', () => {
  it('gives each of many tokenizations sent at once its own card when the vault runs as several worker processes', async () => {
    const workers = await startTestVault({ storage: 'postgres', name: 'tokens-workers', env: { TESSERA_WORKERS: '2' } });
    try {
      const merchant = await createMerchant(workers);
      const numbers = Array.from({ length: 12 }, (_, i) => numberedCard('4000', 7300 + i * 13));
      const cards = await Promise.all(numbers.map((number) => encryptCard(workers.url, cardPlaintext({ number, cvc: '123' }))));
      const created = await Promise.all(cards.map((card) => api(workers.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card } })));
      expect(created.map((response) => response.status)).toEqual(numbers.map(() => 201));
      expect(created.map((response) => response.body.card.last4)).toEqual(numbers.map((number) => number.slice(-4)));
    } finally {
      await workers.close();
    }
  });
});
