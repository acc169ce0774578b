import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, countTokens, createMerchant, openSession, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('idempotency, unique tokens and duplicates on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'idempotency' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const createWithKey = (merchant: TestMerchant, idempotencyKey: string, json: object) =>
    api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json, headers: { 'Idempotency-Key': idempotencyKey } });

  describe('Idempotency-Key', () => {
    it('answers the same key and body with the identical response, byte for byte, and makes one token', async () => {
      const body = { card: await encryptCard(vault.url, cardPlaintext()), customer: 'cus_idem' };
      const before = await countTokens(vault);
      const first = await createWithKey(shop, 'order-1001-card', body);
      const second = await createWithKey(shop, 'order-1001-card', body);
      expect(first.status).toBe(201);
      expect(second.status).toBe(201);
      expect(second.text).toBe(first.text);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(await countTokens(vault)).toBe(before + 1);
    });

    it('answers the same key with a different body with 422 idempotency_mismatch', async () => {
      const first = await createWithKey(shop, 'order-1002-card', { card: await encryptCard(vault.url, cardPlaintext()) });
      expect(first.status).toBe(201);
      const before = await countTokens(vault);
      const second = await createWithKey(shop, 'order-1002-card', { card: await encryptCard(vault.url, cardPlaintext()) });
      expect(second.status).toBe(422);
      expect(second.body.error).toMatchObject({ type: 'idempotency', code: 'idempotency_mismatch' });
      expect(await countTokens(vault)).toBe(before);
    });

    it('answers two concurrent requests with one key with one 201 and one 409 idempotency_in_flight', async () => {
      // Two requests sent together may still not overlap in the vault (the first can finish before the
      // second claims the key, which then replays it). Each round must be one of the two right answers
      // and make one token; rounds repeat, a bounded number of times, until one overlapped.
      let overlapped = false;
      for (let round = 0; round < 10 && !overlapped; round++) {
        const key = `order-1003-card-${round}`;
        const body = { card: await encryptCard(vault.url, cardPlaintext()) };
        const before = await countTokens(vault);
        const responses = await Promise.all([createWithKey(shop, key, body), createWithKey(shop, key, body)]);
        expect(await countTokens(vault)).toBe(before + 1);
        const statuses = responses.map((r) => r.status).sort();
        if (statuses[1] === 409) {
          expect(statuses).toEqual([201, 409]);
          expect(responses.find((r) => r.status === 409)!.body.error.code).toBe('idempotency_in_flight');
          overlapped = true;
        } else {
          expect(statuses).toEqual([201, 201]);
          expect(responses[0]!.text).toBe(responses[1]!.text);
          expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(1);
        }
      }
      expect(overlapped, 'in ten rounds, two concurrent requests overlapped at least once').toBe(true);
    });

    it('keeps nothing of a failed request, so a retry with the same key runs again', async () => {
      const bad = { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa, { number: '4242424242424241' })) };
      expect((await createWithKey(shop, 'order-1004-card', bad)).status).toBe(422);
      expect((await createWithKey(shop, 'order-1004-card', bad)).status).toBe(422);
      const { rows } = await vault.vault.db.query('select 1 from idempotency_keys where key = $1', ['order-1004-card']);
      expect(rows).toHaveLength(0);
    });

    it('scopes keys per merchant: another merchant may use the same key', async () => {
      const other = await createMerchant(vault, { name: 'Scoped Shop' });
      const mine = await createWithKey(shop, 'shared-key', { card: await encryptCard(vault.url, cardPlaintext()) });
      const theirs = await createWithKey(other, 'shared-key', { card: await encryptCard(vault.url, cardPlaintext()) });
      expect([mine.status, theirs.status]).toEqual([201, 201]);
      expect(theirs.body.token).not.toBe(mine.body.token);
    });

    it('honours Idempotency-Key on the card fields form too', async () => {
      const session = await openSession(vault.url, shop);
      const json = { key: shop.publishableKey, session, card: await encryptCard(vault.url, cardPlaintext()), reusable: true };
      const send = () => api(vault.url, 'POST', '/v1/tokens', { json, headers: { 'Idempotency-Key': 'fields-attempt-1' } });
      const first = await send();
      const second = await send();
      expect(first.status).toBe(201);
      expect(second.text).toBe(first.text);
    });
  });

  describe('unique tokens', () => {
    it('gives two customers tokenizing one card the same token name when the merchant has unique tokens on', async () => {
      const unique = await createMerchant(vault, { name: 'Unique Shop', uniqueTokens: true });
      const first = await api(vault.url, 'POST', '/v1/tokens', {
        key: unique.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa, { exp_year: 2031 })), customer: 'cus_a' },
      });
      const second = await api(vault.url, 'POST', '/v1/tokens', {
        key: unique.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa, { exp_year: 2032, name: 'Ada King' })), customer: 'cus_b' },
      });
      expect(first.status).toBe(201);
      expect(second.status).toBe(200);
      expect(second.body.existing).toBe(true);
      expect(second.body.token).toBe(first.body.token);
      // Expiry and name are refreshed from the newer tokenization.
      expect(second.body.card).toMatchObject({ exp_year: 2032, name: 'Ada King' });
    });

    it('gives the card fields the same token for the same card when unique tokens are on', async () => {
      const unique = await createMerchant(vault, { name: 'Unique Fields Shop', uniqueTokens: true });
      const tokenize = async (customer: string) =>
        api(vault.url, 'POST', '/v1/tokens', {
          json: {
            key: unique.publishableKey,
            session: await openSession(vault.url, unique),
            card: await encryptCard(vault.url, cardPlaintext(CARDS.mastercard)),
            reusable: true,
            customer,
          },
        });
      const [first, second] = [await tokenize('cus_a'), await tokenize('cus_b')];
      expect(second.body.token).toBe(first.body.token);
    });

    it('gives two customers different token names for one card when unique tokens are off', async () => {
      const tokenize = async (customer: string) =>
        api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.amex)), customer } });
      const [first, second] = [await tokenize('cus_a'), await tokenize('cus_b')];
      expect(first.status).toBe(201);
      expect(second.status).toBe(201);
      expect(second.body.token).not.toBe(first.body.token);
      expect(second.body.card.fingerprint).toBe(first.body.card.fingerprint);
    });

    it('fingerprints one card differently for different merchants', async () => {
      const other = await createMerchant(vault, { name: 'Fingerprint Shop' });
      const tokenize = async (merchant: TestMerchant) =>
        api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()) } });
      const [mine, theirs] = [await tokenize(shop), await tokenize(other)];
      expect(mine.body.card.fingerprint).not.toBe(theirs.body.card.fingerprint);
    });
  });

  describe('decline duplicates', () => {
    it('refuses any later tokenization of a card registered with decline_duplicates: 409 duplicate_card to the secret key, a generic 422 card_not_accepted to the card fields', async () => {
      const merchant = await createMerchant(vault, { name: 'Signup Offer Shop' });
      const first = await api(vault.url, 'POST', '/v1/tokens', {
        key: merchant.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)), decline_duplicates: true, customer: 'cus_first' },
      });
      expect(first.status).toBe(201);
      expect(first.body.decline_duplicates).toBe(true);

      const before = await countTokens(vault);
      const again = await api(vault.url, 'POST', '/v1/tokens', {
        key: merchant.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)), customer: 'cus_second' },
      });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('duplicate_card');
      const fromFields = await api(vault.url, 'POST', '/v1/tokens', {
        json: {
          key: merchant.publishableKey,
          session: await openSession(vault.url, merchant),
          card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)),
        },
      });
      expect({ status: fromFields.status, code: fromFields.body.error.code }).toEqual({ status: 422, code: 'card_not_accepted' });
      expect(fromFields.text).not.toContain('duplicate');
      expect(await countTokens(vault)).toBe(before);

      // Another card is not affected.
      const other = await api(vault.url, 'POST', '/v1/tokens', {
        key: merchant.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.mastercard)) },
      });
      expect(other.status).toBe(201);
    });

    it('lets the card be registered again once the declining token is deleted', async () => {
      const merchant = await createMerchant(vault, { name: 'Signup Offer Shop 2' });
      const create = async (json: object) =>
        api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()), ...json } });
      const first = await create({ decline_duplicates: true });
      expect((await create({})).status).toBe(409);
      await api(vault.url, 'DELETE', `/v1/tokens/${first.body.token}`, { key: merchant.secretKey });
      expect((await create({})).status).toBe(201);
    });

    it('declines one of two concurrent tokenizations of the same card when the first declines duplicates', async () => {
      const merchant = await createMerchant(vault, { name: 'Concurrent Offer Shop' });
      const create = async () =>
        api(vault.url, 'POST', '/v1/tokens', {
          key: merchant.secretKey,
          json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.amex)), decline_duplicates: true },
        });
      const statuses = (await Promise.all([create(), create(), create()])).map((r) => r.status).sort();
      expect(statuses).toEqual([201, 409, 409]);
    });
  });
});
