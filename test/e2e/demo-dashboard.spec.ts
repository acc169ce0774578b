/**
 * The merchant's dashboard in the demo shop: behind its password, it shows
 * orders with their payments and captures, voids and refunds them, switches
 * between capture at checkout and authorize-only, turns the vault's unique
 * tokens on and off, rolls the shop's secret key, and lists the vault's
 * audit events.
 */
import { api } from '../support/api.ts';
import { DASHBOARD_PASSWORD } from '../support/shop.ts';
import { CARDS } from '../support/cards.ts';
import { confirmedOrderId, expect, fillCart, openDashboard, test, typeCard } from './support/demo.ts';
import type { Page } from '@playwright/test';

async function buy(page: Page, shopUrl: string, product: string): Promise<string> {
  await fillCart(page, shopUrl, [product]);
  await page.goto(`${shopUrl}/checkout.html`);
  await typeCard(page, CARDS.visa);
  await page.getByRole('button', { name: /^Pay/ }).click();
  return confirmedOrderId(page);
}

test('the dashboard captures, voids and refunds, switches capture and unique tokens, and shows the audit events', async ({ page, demo }) => {
  // A long journey: ~10 s alone, up to ~25 s beside the rest of `npm test`, too near the 30 s default.
  test.slow();
  const dashboard = `${demo.shop.url}/dashboard.html`;
  await page.goto(dashboard);
  await page.getByLabel('Dashboard password').fill('not the password');
  await page.getByRole('button', { name: 'Open the dashboard' }).click();
  await expect(page.getByRole('alert')).toHaveText('That is not the dashboard password.');
  await page.getByLabel('Dashboard password').fill(DASHBOARD_PASSWORD);
  await page.getByRole('button', { name: 'Open the dashboard' }).click();
  const capture = page.getByRole('checkbox', { name: /Capture payments at checkout/ });
  await expect(capture).toBeChecked();

  try {
    await capture.uncheck();
    await expect(page.getByRole('status')).toHaveText('Setting saved.');

    // Authorize only: two orders wait for the merchant.
    const shipped = await buy(page, demo.shop.url, 'Tile nippers');
    await expect(page.locator('#order-status')).toHaveText('Authorized: your card is charged when the order ships');
    const cancelled = await buy(page, demo.shop.url, 'Fibreglass mesh (1 m²)');
    const paymentOf = async (orderId: string) => (await demo.vaultGet(`/v1/payments?reference=${orderId}`)).data[0];
    expect(await paymentOf(shipped)).toMatchObject({ status: 'authorized', amount: 1850, amount_captured: 0 });

    await page.goto(dashboard);
    const row = (orderId: string) => page.locator(`#order-${orderId}`);
    await expect(row(shipped)).toContainText('authorized');
    await expect(row(shipped)).toContainText('Visa ending in 4242');
    await page.getByRole('button', { name: `Capture order ${shipped}` }).click();
    await expect(row(shipped)).toContainText('captured');
    expect(await paymentOf(shipped)).toMatchObject({ status: 'captured', amount_captured: 1850 });

    await page.getByRole('button', { name: `Void order ${cancelled}` }).click();
    await expect(row(cancelled)).toContainText('voided');
    await expect(row(cancelled).getByRole('button')).toHaveCount(0);
    expect((await paymentOf(cancelled)).status).toBe('voided');

    await page.getByRole('button', { name: `Refund order ${shipped}` }).click();
    await expect(row(shipped)).toContainText('refunded');
    expect(await paymentOf(shipped)).toMatchObject({ status: 'refunded', amount_refunded: 1850 });

    const events = page.locator('#events-table tbody');
    for (const action of ['payment.authorized', 'payment.captured', 'payment.voided', 'payment.refunded']) await expect(events).toContainText(action);

    const uniqueTokens = page.getByRole('checkbox', { name: /Unique tokens/ });
    await expect(uniqueTokens).not.toBeChecked();
    await uniqueTokens.check();
    await expect(page.getByRole('status')).toHaveText('Setting saved.');
    expect((await demo.vaultGet('/v1/merchant')).unique_tokens).toBe(true);
    await page.reload();
    await expect(uniqueTokens).toBeChecked();
  } finally {
    // The shop is shared by this worker's other tests: leave its settings as they were.
    const restored = await page.request.patch(`${demo.shop.url}/api/dashboard/settings`, { data: { captureAtCheckout: true, uniqueTokens: false } });
    expect(restored.status()).toBe(200);
  }
  expect((await demo.vaultGet('/v1/merchant')).unique_tokens).toBe(false);
});

test('the merchant rolls the secret key with “now”: the vault refuses the old key at once, and the shop authorizes and captures with the new one', async ({
  page,
  demo,
  shopTraffic,
}) => {
  const oldKey = demo.merchant.secretKey;
  await openDashboard(page, demo.shop.url);
  await expect(page.locator('#key-roll')).not.toBeEmpty();
  await page.getByRole('radio', { name: 'Now (if it may have leaked)' }).check();
  await page.getByRole('button', { name: 'Roll the secret key' }).click();
  await expect(page.getByRole('status')).toContainText('Secret key rolled: the shop uses the new key. The previous key stopped working on');
  await expect(page.locator('#key-roll')).toContainText('The previous key stopped working on');
  await expect(page.locator('#events-table tbody')).toContainText('merchant.secret_key_rolled');
  const newKey = demo.merchant.secretKey;
  expect(newKey).not.toBe(oldKey);
  expect((await api(demo.vault.url, 'GET', '/v1/merchant', { key: oldKey })).status).toBe(401);

  const capture = page.getByRole('checkbox', { name: /Capture payments at checkout/ });
  try {
    await capture.uncheck();
    await expect(page.getByRole('status')).toHaveText('Setting saved.');
    const orderId = await buy(page, demo.shop.url, 'Tile nippers');
    await openDashboard(page, demo.shop.url);
    const row = page.locator(`#order-${orderId}`);
    await expect(row).toContainText('authorized');
    await page.getByRole('button', { name: `Capture order ${orderId}` }).click();
    await expect(row).toContainText('captured');
    const payment = (await demo.vaultGet(`/v1/payments?reference=${orderId}`)).data[0];
    expect(payment).toMatchObject({ status: 'captured', amount: 1850, amount_captured: 1850 });
    // The audit log names the key by its last 4: the capture came with the new key.
    const events = (await demo.vaultGet(`/v1/events?payment=${payment.id}`)).data;
    expect(events.find((event: { action: string }) => event.action === 'payment.captured').actor).toBe(`sk_test_…${newKey.slice(-4)}`);
  } finally {
    const restored = await page.request.patch(`${demo.shop.url}/api/dashboard/settings`, { data: { captureAtCheckout: true } });
    expect(restored.status()).toBe(200);
  }

  // Neither key ever reached the page (the fixture also checks every test's traffic for any whole secret key).
  const traffic = await shopTraffic.exchanges();
  expect(traffic.filter((exchange) => exchange.url.endsWith('/api/dashboard/keys/roll')).map((exchange) => exchange.requestBody)).toEqual(['{"expiresIn":0}']);
  const seen = traffic.map((exchange) => `${exchange.url} ${exchange.requestBody} ${exchange.responseBody}`).join('\n');
  expect(seen).not.toContain(oldKey);
  expect(seen).not.toContain(newKey);
});
