/**
 * The shop never handles card data, and its secret key and webhook secret
 * stay in its server process and data folder: after purchases, a decline, a
 * card saved at sign-up, a payment with a re-collected CVC, their webhooks,
 * and a roll of the secret key on the dashboard, neither the shop's
 * database, nor its log, nor anything its pages exchanged with its backend
 * holds a test card number (plain or spaced), a CVC, a secret key or the
 * webhook signing secret (`whsec_…`). (Every demo test also checks its own
 * traffic; the leak step at the end of `npm test` scans every shop database
 * and log again, with the vault's.)
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { webhookEndpointPath } from '../../demo/server/webhook-endpoint.ts';
import { CARDS, SANDBOX_CARDS } from '../support/cards.ts';
import { dumpTables, scanLog, scanTableDump, SECRET_KEY, SECRET_NUMBERS } from '../support/leaks.ts';
import { cardDataIn } from './support/card-data.ts';
import { cardFields, confirmedOrderId, expect, fieldsReady, fillCart, openDashboard, signUp, test, typeCard } from './support/demo.ts';

test('no card number, CVC or secret key in the shop’s database, its log, or its pages’ traffic to its backend', async ({ page, demo, shopTraffic }) => {
  // A long journey: ~10 s alone, up to ~25 s beside the rest of `npm test`, too near the 30 s default.
  test.slow();
  // A card typed with the spaces a shopper might type, declined, then another, approved.
  await fillCart(page, demo.shop.url, ['Mosaic grout, grey (500 g)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await typeCard(page, { number: '4000 0000 0000 0002', cvc: CARDS.visa.cvc });
  await page.getByRole('button', { name: /^Pay/ }).click();
  await expect(page.getByRole('alert')).toHaveText('Your card was declined. Try another card.');
  await typeCard(page, { number: CARDS.visa.spaced, cvc: CARDS.visa.cvc });
  await page.getByRole('button', { name: /^Pay/ }).click();
  await confirmedOrderId(page);

  // Sign-up with an Amex saved (verified), then paid with its CVC re-collected in cvc mode.
  await signUp(page, demo.shop.url);
  await typeCard(page, CARDS.amex);
  await page.getByRole('button', { name: 'Save card' }).click();
  await expect(page.locator('#card-list')).toContainText('American Express •••• 0005');
  await fillCart(page, demo.shop.url, ['Terracotta squares (2 kg)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await fieldsReady(page);
  await cardFields(page).locator('#cvc').pressSequentially(CARDS.amex.cvc);
  await page.getByRole('button', { name: /^Pay/ }).click();
  await confirmedOrderId(page);
  expect(SECRET_NUMBERS).toContain(SANDBOX_CARDS.generic_decline);

  // The merchant rolls the secret key (the previous one keeps working for an hour); the dashboard then reads the vault with the new one.
  const oldKey = demo.merchant.secretKey;
  await openDashboard(page, demo.shop.url);
  await page.getByRole('radio', { name: 'In 1 hour' }).check();
  await page.getByRole('button', { name: 'Roll the secret key' }).click();
  await expect(page.locator('#key-roll')).toContainText('The previous key keeps working until');
  await page.reload();
  await expect(page.locator('#events-table tbody')).toContainText('merchant.secret_key_rolled');
  const newKey = demo.merchant.secretKey;
  expect(newKey).not.toBe(oldKey);
  // The purchases' webhooks came in, verified with the secret the shop keeps in its data folder, owner-only.
  await expect(page.locator('#deliveries-table tbody')).toContainText('payment.captured');
  const endpointFile = webhookEndpointPath(demo.shop.dataDir);
  expect(statSync(endpointFile).mode & 0o777).toBe(0o600);
  const webhookSecret = (JSON.parse(readFileSync(endpointFile, 'utf8')) as { secret: string }).secret;
  expect(webhookSecret).toMatch(/^whsec_/);
  const secretKeyIn = (text: string) =>
    SECRET_KEY.test(text) || text.includes(oldKey) || text.includes(newKey) || text.includes(webhookSecret) || text.includes(webhookSecret.slice(6));

  // 1. The pages' traffic to the shop's backend: it carried tokens and the CVC handle, and nothing in clear.
  const traffic = await shopTraffic.exchanges();
  const checkouts = traffic.filter((exchange) => exchange.method === 'POST' && exchange.url.endsWith('/api/checkout'));
  expect(checkouts.length).toBe(3);
  expect(checkouts.some((exchange) => /"cvc":"eyJ[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+"/.test(exchange.requestBody))).toBe(true);
  expect(traffic.flatMap((exchange) => cardDataIn([exchange.requestBody, exchange.responseBody, exchange.url]) ?? [])).toEqual([]);
  expect(traffic.filter((exchange) => exchange.url.endsWith('/api/dashboard/keys/roll'))).toHaveLength(1);
  expect(traffic.filter((exchange) => exchange.url.endsWith('/api/dashboard/webhooks')).length).toBeGreaterThan(0);
  // The audit events on the dashboard name a key as `sk_test_…` and its last 4; a whole key never comes.
  expect(traffic.filter((exchange) => [exchange.url, exchange.requestBody, exchange.responseBody].some(secretKeyIn)).map((exchange) => exchange.url)).toEqual([]);

  // 2. Every text, json and bytea column of every table of the shop's database.
  const dumps = await dumpTables(async (sql) => (await demo.shop.db.query<Record<string, unknown>>(sql)).rows);
  expect(dumps.map((dump) => dump.table)).toEqual(
    expect.arrayContaining(['orders', 'payment_attempts', 'saved_cards', 'users', 'sessions', 'key_rolls', 'webhook_events']),
  );
  expect(dumps.find((dump) => dump.table === 'payment_attempts')!.values.length).toBeGreaterThan(0);
  expect(dumps.find((dump) => dump.table === 'webhook_events')!.values.length).toBeGreaterThan(0);
  expect(dumps.flatMap((dump) => scanTableDump('shop database', dump))).toEqual([]);
  const everything = dumps.flatMap((dump) => dump.values.map((value) => (typeof value === 'string' ? value : Buffer.from(value).toString('latin1'))));
  for (const number of SECRET_NUMBERS) expect(everything.some((value) => value.includes(number))).toBe(false);
  expect(everything.filter(secretKeyIn)).toEqual([]);

  // 3. The shop's log.
  expect(existsSync(demo.shop.logFile)).toBe(true);
  const log = readFileSync(demo.shop.logFile, 'utf8');
  expect(log).toContain('"path":"/api/checkout"');
  expect(log).toContain('secret key rolled; the shop uses the new key');
  expect(log).toContain('"msg":"webhook event received"');
  expect(scanLog(demo.shop.logFile, [])).toEqual([]);
  expect(log).not.toContain('sk_test_');
  expect(secretKeyIn(log)).toBe(false);
});
