/**
 * `npm run seed` (scripts/seed-tokens.ts): the tokens it writes fast are
 * tokens like any other — they read back, list by customer, and pay (their
 * sealed cards open).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MerchantDirectory } from '../../server/merchants/service.ts';
import { seededCustomer, seedTokens, tokenStorage, TOKENS_PER_CUSTOMER } from '../../scripts/seed-tokens.ts';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('seeded tokens on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let tokens: string[];

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'seed' });
    shop = await createMerchant(vault);
    const merchant = (await new MerchantDirectory(vault.vault.db, vault.vault.deps.merchantKeys).byId(shop.id))!;
    tokens = await seedTokens(vault.vault.deps, merchant, { from: 0, to: 2 * TOKENS_PER_CUSTOMER });
  });
  afterAll(() => vault?.close());

  it('writes tokens that read back through the API with their brand and last 4', async () => {
    expect(new Set(tokens).size).toBe(2 * TOKENS_PER_CUSTOMER);
    const read = await api(vault.url, 'GET', `/v1/tokens/${tokens[3]}`, { key: shop.secretKey });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ token: tokens[3], reusable: true, customer: seededCustomer(3), card: { brand: 'visa', last4: expect.stringMatching(/^\d{4}$/) } });
  });

  it('gives each customer its share of the tokens, listed newest first', async () => {
    const listed = await api(vault.url, 'GET', `/v1/tokens?customer=${seededCustomer(TOKENS_PER_CUSTOMER)}&limit=100`, { key: shop.secretKey });
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((token: { token: string }) => token.token)).toEqual(tokens.slice(TOKENS_PER_CUSTOMER).reverse());
  });

  it('writes cards that open: a seeded token pays', async () => {
    const paid = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: tokens[0], amount: 1999, currency: 'EUR', capture: false } });
    expect(paid.status).toBe(201);
    expect(paid.body).toMatchObject({ status: 'authorized', amount: 1999 });
  });

  it('counts the stored tokens and the size of the table and of each index', async () => {
    const measured = await tokenStorage(vault.vault.db);
    expect(measured.tokens).toBe(2 * TOKENS_PER_CUSTOMER);
    expect(measured.table).toBeGreaterThan(0);
    expect(measured.indexes.map((index) => index.name)).toContain('tokens_customer');
  });
});
