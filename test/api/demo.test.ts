import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoApp } from '../../demo/server/app.ts';
import { loadDemoMerchant, type DemoMerchant } from '../../demo/server/config.ts';
import { DEMO_MERCHANT_ORIGIN } from '../../server/merchants/demo.ts';
import { api, openSession, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, nextYear } from '../support/cards.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

const PAGES_DIR = join(import.meta.dirname, '..', '..', 'dist', 'demo');

interface DemoShop {
  url: string;
  close(): Promise<void>;
}

/** The demo shop's backend on a loopback port, its log lines kept in `logLines`. */
async function startDemoShop(merchant: DemoMerchant, vaultUrl: string, logLines: string[]): Promise<DemoShop> {
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const app = createDemoApp({ merchant, vaultUrl, pagesDir: PAGES_DIR, log });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A loopback port nothing listens on: the vault, switched off. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('the demo shop backend', () => {
  let vault: TestVault;
  let merchant: DemoMerchant;
  let shop: DemoShop;
  const logLines: string[] = [];
  const tokensSeen: string[] = [];

  beforeAll(async () => {
    vault = await startTestVault({ name: 'demo' });
    // The vault wrote the demo merchant's keys on its first start, as for `npm start`.
    merchant = loadDemoMerchant(vault.dataDir);
    shop = await startDemoShop(merchant, vault.url, logLines);
  });
  afterAll(async () => {
    await shop?.close();
    await vault?.close();
  });

  /** A token made the way the card fields on the demo pages make it. */
  async function tokenFromFields(options: { reusable: boolean; card?: { number: string; cvc: string } }): Promise<string> {
    const asTestMerchant: TestMerchant = {
      id: merchant.merchantId,
      publishableKey: merchant.publishableKey,
      secretKey: merchant.secretKey,
      allowedOrigins: [DEMO_MERCHANT_ORIGIN],
    };
    const session = await openSession(vault.url, asTestMerchant);
    const created = await api(vault.url, 'POST', '/v1/tokens', {
      json: {
        key: merchant.publishableKey,
        session,
        card: await encryptCard(vault.url, cardPlaintext(options.card ?? CARDS.visa)),
        reusable: options.reusable,
      },
    });
    expect(created.status).toBe(201);
    tokensSeen.push(created.body.token);
    return created.body.token;
  }

  it('gives its pages the publishable key and the vault URL, and never the secret key', async () => {
    const response = await api(shop.url, 'GET', '/api/config');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ publishableKey: merchant.publishableKey, vaultUrl: vault.url });
    expect(merchant.secretKey).toMatch(/^sk_/);
    expect(response.text).not.toContain(merchant.secretKey);
    expect(response.text).not.toContain('sk_');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('lets its pages load checkout.js and the fields iframe from the vault, and nothing else from elsewhere (CSP)', async () => {
    const csp = (await api(shop.url, 'GET', '/api/config')).headers.get('content-security-policy') ?? '';
    expect(csp).toContain(`script-src 'self' ${vault.url}`);
    expect(csp).toContain(`frame-src ${vault.url}`);
    expect(csp).toContain(`connect-src 'self' ${vault.url}`);
    expect(csp).toContain("default-src 'self'");
  });

  it.each([
    { card: CARDS.visa, brand: 'visa' },
    { card: CARDS.amex, brand: 'american-express' },
  ])('saves a reusable $brand token on the account, answering its brand, last 4 and expiry read from the vault', async ({ card, brand }) => {
    const token = await tokenFromFields({ reusable: true, card });
    const response = await api(shop.url, 'POST', '/api/cards', { json: { token } });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({ token, reusable: true, card: { brand, last4: card.last4, expMonth: 12, expYear: nextYear() } });
  });

  it('answers 404 token_not_found, with a message for the shopper, for a token the vault does not know', async () => {
    const response = await api(shop.url, 'POST', '/api/cards', { json: { token: 'tok_0000000000000000000000' } });
    expect(response.status).toBe(404);
    expect(response.body).toEqual({
      error: { code: 'token_not_found', message: 'This card is unknown to the payment service or has expired. Please enter it again.' },
    });
  });

  it('refuses to save a single-use token on the account (422 token_not_reusable)', async () => {
    const response = await api(shop.url, 'POST', '/api/cards', { json: { token: await tokenFromFields({ reusable: false }) } });
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe('token_not_reusable');
  });

  it('confirms a checkout as received with the token, saying that payment capture is not built yet', async () => {
    const token = await tokenFromFields({ reusable: false });
    const response = await api(shop.url, 'POST', '/api/checkout', { json: { token } });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      order: { id: expect.stringMatching(/^ord_[0-9a-f]{16}$/), status: 'received', amount: expect.any(Number), currency: 'EUR' },
      token,
      reusable: false,
      card: { brand: 'visa', last4: '4242' },
    });
    expect(response.body.message).toBe(`Order ${response.body.order.id} received with token ${token} (payment capture comes with the payments API).`);
  });

  it('charges the total of the cart its server holds, whatever the page shows', async () => {
    const cart = await api(shop.url, 'GET', '/api/cart');
    const order = await api(shop.url, 'POST', '/api/checkout', { json: { token: await tokenFromFields({ reusable: true }) } });
    expect(order.body.order.amount).toBe(cart.body.total);
    expect(cart.body.total).toBe(cart.body.items.reduce((sum: number, item: { amount: number }) => sum + item.amount, 0));
  });

  it.each([
    { name: 'no body', options: {} },
    { name: 'a token that is not a string', options: { json: { token: 42 } } },
    { name: 'a token that is not a token name', options: { json: { token: '../merchant' } } },
    { name: 'an unknown parameter', options: { json: { token: 'tok_abc', amount: 1 } } },
    { name: 'a body that is not JSON', options: { raw: '{"token":', contentType: 'application/json' } },
  ])('answers 400 to $name, without calling the vault', async ({ options }) => {
    const vaultRequests = () => readFileSync(vault.logFile, 'utf8').split('\n').filter((line) => line.includes('"msg":"request"')).length;
    const before = vaultRequests();
    const response = await api(shop.url, 'POST', '/api/checkout', options);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toMatch(/^(parameter_invalid|invalid_json)$/);
    expect(vaultRequests()).toBe(before);
  });

  it('answers 503 vault_unavailable when the vault cannot be reached', async () => {
    const offline = await startDemoShop(merchant, `http://127.0.0.1:${await closedPort()}`, logLines);
    try {
      const response = await api(offline.url, 'POST', '/api/checkout', { json: { token: 'tok_0000000000000000000000' } });
      expect(response.status).toBe(503);
      expect(response.body.error.code).toBe('vault_unavailable');
    } finally {
      await offline.close();
    }
  });

  it('never writes the secret key or a token to its log', () => {
    const log = logLines.join('');
    expect(log).toContain('"path":"/api/checkout"');
    expect(log).not.toContain(merchant.secretKey);
    for (const token of tokensSeen) expect(log).not.toContain(token);
  });
});
