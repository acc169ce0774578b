/**
 * The demo shop's backend against a real vault, without a browser: what the
 * pages cannot show — cookies and password storage, idempotent payment
 * retries, refusals before the vault is called, and what reaches its log.
 * The shopper's journeys are in test/e2e/demo-*.spec.ts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDemoMerchant, type DemoMerchant } from '../../demo/server/config.ts';
import { api } from '../support/api.ts';
import { SANDBOX_CARDS } from '../support/cards.ts';
import { freePort } from '../support/ports.ts';
import { fieldsToken as makeFieldsToken, Shopper, startTestShop, type TestShop } from '../support/shop.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

describe('the demo shop backend', () => {
  let vault: TestVault;
  let merchant: DemoMerchant;
  let shop: TestShop;
  const tokensSeen: string[] = [];

  beforeAll(async () => {
    vault = await startTestVault({ name: 'demo' });
    // The vault wrote the demo merchant's keys on its first start, as for `npm start`.
    merchant = loadDemoMerchant(vault.dataDir);
    shop = await startTestShop({ merchant, vaultUrl: vault.url, name: 'demo-shop-api' });
  });
  afterAll(async () => {
    await shop?.close();
    await vault?.close();
  });

  /** A token made the way the card fields on the shop's pages make it. */
  async function fieldsToken(options: { reusable?: boolean; number?: string; customer?: string } = {}): Promise<string> {
    const token = await makeFieldsToken(vault.url, merchant, options);
    tokensSeen.push(token);
    return token;
  }

  const vaultGet = async (path: string) => (await api(vault.url, 'GET', path, { key: merchant.secretKey })).body;

  async function shopperWithCart(): Promise<Shopper> {
    const shopper = new Shopper(() => shop);
    expect((await shopper.call('POST', '/api/cart', { json: { product_id: 'nippers', quantity: 2 } })).status).toBe(200);
    return shopper;
  }

  it('gives its pages the publishable key and the vault URL, and never the secret key', async () => {
    const response = await api(shop.url, 'GET', '/api/config');
    expect(response.body).toEqual({ publishableKey: merchant.publishableKey, vaultUrl: vault.url });
    expect(response.text).not.toContain('sk_');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain(`script-src 'self' ${vault.url}`);
    expect(csp).toContain(`frame-src ${vault.url}`);
  });

  it('keeps sessions in an HttpOnly, SameSite=Lax cookie whose value the database does not hold', async () => {
    const shopper = await shopperWithCart();
    expect(shopper.lastSetCookie).toMatch(/^shop_session=[A-Za-z0-9_-]{43};/);
    expect(shopper.lastSetCookie).toContain('HttpOnly');
    expect(shopper.lastSetCookie).toContain('SameSite=Lax');
    const value = shopper.cookie!.split('=')[1]!;
    const { rows } = await shop.db.query<{ id: string }>('select id from sessions');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((row) => row.id === value)).toBe(false);
  });

  it('stores a salted scrypt hash of the password, signs in with it in a new session, and refuses a wrong one', async () => {
    const shopper = await shopperWithCart();
    const guestCookie = shopper.cookie;
    const password = 'correct horse battery';
    expect((await shopper.call('POST', '/api/signup', { json: { email: 'Hash@Example.test', password } })).status).toBe(201);
    expect(shopper.cookie).not.toBe(guestCookie);
    // The cart came along to the new session.
    expect((await shopper.call('GET', '/api/cart')).body.count).toBe(2);

    const { rows } = await shop.db.query<{ email: string; password_hash: string }>("select email, password_hash from users where email = 'hash@example.test'");
    expect(rows[0]!.password_hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{86}$/);
    expect(rows[0]!.password_hash).not.toContain(password);

    const again = new Shopper(() => shop);
    expect((await again.call('POST', '/api/signup', { json: { email: 'hash@example.test', password } })).status).toBe(409);
    expect((await again.call('POST', '/api/login', { json: { email: 'hash@example.test', password: 'wrong horse battery' } })).status).toBe(401);
    expect((await again.call('POST', '/api/login', { json: { email: 'nobody@example.test', password } })).status).toBe(401);
    expect((await again.call('POST', '/api/login', { json: { email: 'HASH@example.test', password } })).status).toBe(200);
    expect((await again.call('GET', '/api/me')).body.user.email).toBe('hash@example.test');
  });

  it('charges the cart total its server holds, with the order id as reference and a per-attempt Idempotency-Key', async () => {
    const shopper = await shopperWithCart();
    const token = await fieldsToken();
    const response = await shopper.call('POST', '/api/checkout', { json: { token } });
    expect(response.status, response.text).toBe(201);
    const order = response.body.order;
    expect(order).toMatchObject({ status: 'captured', amount: 3700, currency: 'EUR', card: { brand: 'visa', last4: '4242' }, cardSaved: false });
    const payments = (await vaultGet(`/v1/payments?reference=${order.id}`)).data;
    expect(payments).toMatchObject([{ status: 'captured', amount: 3700, amount_captured: 3700, token }]);
    // The cart is empty after a paid order.
    expect((await shopper.call('GET', '/api/cart')).body.count).toBe(0);
  });

  it('answers a decline in plain words and pays the same order with the next card, as a second attempt', async () => {
    const shopper = await shopperWithCart();
    const declined = await shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken({ number: SANDBOX_CARDS.insufficient_funds }) } });
    expect(declined.status).toBe(402);
    expect(declined.body.error).toEqual({ code: 'card_declined', message: 'Your card was declined for insufficient funds. Try another card.' });
    const paid = await shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken() } });
    expect(paid.status).toBe(201);
    const payments = (await vaultGet(`/v1/payments?reference=${paid.body.order.id}`)).data;
    expect(payments.map((payment: { status: string; decline_code: string | null }) => [payment.status, payment.decline_code])).toEqual([
      ['captured', null],
      ['declined', 'insufficient_funds'],
    ]);
    const attempts = await shop.db.query<{ attempt: number; outcome: string }>('select attempt, outcome from payment_attempts where order_id = $1 order by attempt', [
      paid.body.order.id,
    ]);
    expect(attempts.rows).toEqual([
      { attempt: 1, outcome: 'declined' },
      { attempt: 2, outcome: 'captured' },
    ]);
  });

  it('sends a payment whose answer was lost (502 acquirer_error) again with the same Idempotency-Key, and charges once', async () => {
    const shopper = await shopperWithCart();
    const response = await shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken({ number: SANDBOX_CARDS.acquirer_error }) } });
    expect(response.status, response.text).toBe(201);
    expect(response.body.order.status).toBe('captured');
    expect((await vaultGet(`/v1/payments?reference=${response.body.order.id}`)).data).toHaveLength(1);
    expect(readFileSync(shop.logFile, 'utf8')).toContain('payment unanswered; sending it again');
  });

  it('saves a card added with no purchase only after a verification, and deletes one that fails it from the vault', async () => {
    const shopper = new Shopper(() => shop);
    const { body } = await shopper.call('POST', '/api/signup', { json: { email: 'cards@example.test', password: 'a long password' } });
    const userId: string = body.user.id;

    const notMine = await shopper.call('POST', '/api/cards', { json: { token: await fieldsToken({ reusable: true, customer: 'usr_someone_else' }) } });
    expect(notMine.status).toBe(422);

    const failing = await fieldsToken({ reusable: true, customer: userId, number: SANDBOX_CARDS.generic_decline });
    const refused = await shopper.call('POST', '/api/cards', { json: { token: failing } });
    expect(refused.status).toBe(402);
    expect(refused.body.error.message).toBe('Your card was declined. Try another card.');
    expect((await api(vault.url, 'GET', `/v1/tokens/${failing}`, { key: merchant.secretKey })).status).toBe(404);

    const good = await fieldsToken({ reusable: true, customer: userId });
    const saved = await shopper.call('POST', '/api/cards', { json: { token: good } });
    expect(saved.status).toBe(201);
    expect(saved.body.card).toMatchObject({ brand: 'visa', last4: '4242', isDefault: true });
    expect((await vaultGet(`/v1/payments?token=${good}`)).data).toEqual([]);
    expect((await vaultGet(`/v1/events?token=${good}`)).data.map((event: { action: string }) => event.action)).toContain('token.verified');

    // Another shopper can neither see, delete nor pay with it.
    const other = await shopperWithCart();
    await other.call('POST', '/api/signup', { json: { email: 'other@example.test', password: 'a long password' } });
    expect((await other.call('GET', '/api/account')).body.cards).toEqual([]);
    expect((await other.call('DELETE', `/api/cards/${saved.body.card.id}`)).status).toBe(404);
    expect((await other.call('POST', '/api/checkout', { json: { saved_card: saved.body.card.id, cvc: 'a.b.c.d.e' } })).status).toBe(404);
    expect((await other.call('POST', '/api/checkout', { json: { token: good } })).status).toBe(404);
  });

  it.each([
    { name: 'no body', options: {} },
    { name: 'a token that is not a string', options: { json: { token: 42 } } },
    { name: 'a token that is not a token name', options: { json: { token: '../merchant' } } },
    { name: 'an unknown parameter', options: { json: { token: 'tok_abc', amount: 1 } } },
    { name: 'a body that is not JSON', options: { raw: '{"token":', contentType: 'application/json' } },
  ])('answers 400 to a checkout with $name, without calling the vault', async ({ options }) => {
    const shopper = await shopperWithCart();
    const vaultRequests = () => readFileSync(vault.logFile, 'utf8').split('\n').filter((line) => line.includes('"msg":"request"')).length;
    const before = vaultRequests();
    const response = await shopper.call('POST', '/api/checkout', options);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toMatch(/^(parameter_invalid|invalid_json)$/);
    expect(vaultRequests()).toBe(before);
  });

  it('refuses a write from another origin (403) and an empty cart’s checkout (409)', async () => {
    const shopper = await shopperWithCart();
    const forged = await shopper.call('POST', '/api/cart', { json: { product_id: 'mesh', quantity: 1 }, headers: { origin: 'http://evil.example' } });
    expect(forged.status).toBe(403);
    const empty = new Shopper(() => shop);
    expect((await empty.call('POST', '/api/checkout', { json: { token: 'tok_abc' } })).status).toBe(409);
  });

  it('keeps the dashboard behind its password', async () => {
    const visitor = new Shopper(() => shop);
    expect((await visitor.call('GET', '/api/dashboard')).status).toBe(401);
    expect((await visitor.call('POST', '/api/dashboard/login', { json: { password: 'guess' } })).status).toBe(401);
    expect((await visitor.call('PATCH', '/api/dashboard/settings', { json: { uniqueTokens: true } })).status).toBe(401);
  });

  it('answers 503 vault_unavailable when the vault cannot be reached', async () => {
    const offline = await startTestShop({ merchant, vaultUrl: `http://127.0.0.1:${await freePort()}`, name: 'demo-shop-offline' });
    try {
      const shopper = new Shopper(() => offline);
      await shopper.call('POST', '/api/cart', { json: { product_id: 'mesh', quantity: 1 } });
      const response = await shopper.call('POST', '/api/checkout', { json: { token: 'tok_0000000000000000000000' } });
      expect(response.status).toBe(503);
      expect(response.body.error.code).toBe('vault_unavailable');
    } finally {
      await offline.close();
    }
  });

  it('never writes the secret key, a token or a password to its log', () => {
    const log = readFileSync(shop.logFile, 'utf8');
    expect(log).toContain('"path":"/api/checkout"');
    expect(log).not.toContain(merchant.secretKey);
    expect(log).not.toContain('password');
    for (const token of tokensSeen) expect(log).not.toContain(token);
  });
});
