/**
 * The per-minute limits on the card-fields endpoints (sessions, the fields
 * document, tokens from the fields): per client IP and per publishable key,
 * answered with 429 `rate_limited` and `Retry-After` (api.md). Every other
 * test vault sets them to 100,000; these set them low. The window arithmetic
 * is unit-tested in test/unit/server/rate-limit.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, apiFrom, createMerchant, type ApiResponse, type TestMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

/** A fields document to serve without the production build: only its script and style URLs are needed, not the files. */
const WIDGET = { checkout: undefined, esm: undefined, fields: { script: '/v1/assets/fields.js', styles: [] }, pay: undefined, assets: new Map() };

/**
 * The limits count in windows aligned to the minute: a check that needs
 * several requests in one window starts with at least 15 s of it left.
 */
async function freshWindow(): Promise<void> {
  await vi.waitFor(() => expect(60_000 - (Date.now() % 60_000), 'ms left in this minute').toBeGreaterThan(15_000), { timeout: 20_000, interval: 100 });
}

function expectRateLimited(response: ApiResponse): void {
  expect(response.status, response.text).toBe(429);
  expect(response.body.error.code).toBe('rate_limited');
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

describe('the per-IP limit on the card-fields endpoints', () => {
  const LIMIT = 4;
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ name: 'rate-limit-ip', widget: WIDGET, env: { TESSERA_RATE_LIMIT_PER_IP: String(LIMIT) } });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const session = (from: string) => apiFrom(from, vault.url, 'POST', '/v1/sessions', { json: { key: shop.publishableKey, parent_origin: shop.allowedOrigins[0] } });
  const fieldsDocument = (from: string) =>
    apiFrom(from, vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent(shop.allowedOrigins[0]!)}`);

  it('counts sessions, fields documents and tokens from the fields together, refuses a client past the limit with 429 and Retry-After, and still serves another client', async () => {
    await freshWindow();
    const from = '127.0.0.2';
    const opened = await session(from);
    expect(opened.status).toBe(201);
    expect((await fieldsDocument(from)).status).toBe(200);
    const card = await encryptCard(vault.url, cardPlaintext());
    const token = await apiFrom(from, vault.url, 'POST', '/v1/tokens', { json: { key: shop.publishableKey, session: opened.body.session, card } });
    expect(token.status, token.text).toBe(201);
    expect((await session(from)).status).toBe(201);

    expectRateLimited(await session(from));
    expectRateLimited(await fieldsDocument(from));
    expect((await session('127.0.0.3')).status).toBe(201);
  });

  it('does not count the merchant server’s requests with its secret key', async () => {
    await freshWindow();
    const from = '127.0.0.4';
    for (let i = 0; i < LIMIT + 2; i++) expect((await apiFrom(from, vault.url, 'GET', '/v1/tokens?limit=1', { key: shop.secretKey })).status).toBe(200);
    expect((await session(from)).status).toBe(201);
  });
});

describe('the per-key limit on the card-fields endpoints', () => {
  const LIMIT = 3;
  let vault: TestVault;
  let shop: TestMerchant;
  let otherShop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ name: 'rate-limit-key', env: { TESSERA_RATE_LIMIT_PER_KEY: String(LIMIT) } });
    shop = await createMerchant(vault);
    otherShop = await createMerchant(vault, { name: 'Other Shop' });
  });
  afterAll(() => vault?.close());

  const session = (merchant: TestMerchant, from: string) =>
    apiFrom(from, vault.url, 'POST', '/v1/sessions', { json: { key: merchant.publishableKey, parent_origin: merchant.allowedOrigins[0] } });

  it('refuses a publishable key past its limit from any client with 429 and Retry-After, and still serves another merchant’s key', async () => {
    await freshWindow();
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) expect((await session(shop, from)).status).toBe(201);
    expectRateLimited(await session(shop, '127.0.0.5'));
    const card = await encryptCard(vault.url, cardPlaintext());
    expectRateLimited(await api(vault.url, 'POST', '/v1/tokens', { json: { key: shop.publishableKey, session: 'sess_any', card } }));
    expect((await session(otherShop, '127.0.0.5')).status).toBe(201);
  });
});
