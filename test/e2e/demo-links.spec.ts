/**
 * The demo dashboard's payment links and capture batch: the merchant makes
 * a link (its URL and QR code to send), a shopper pays it on the vault's
 * hosted page in their own browser, the dashboard shows it completed, and a
 * second link is expired by hand; then two authorized orders are captured
 * as one batch, its progress and results on the page.
 */
import type { Page } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { confirmedOrderId, expect, fillCart, openDashboard, test, typeCard } from './support/demo.ts';

const nextYearExpiry = () => `12${String((new Date().getFullYear() + 1) % 100).padStart(2, '0')}`;

async function createLink(page: Page, amount: string, description: string): Promise<string> {
  await page.getByLabel('Amount (EUR)').fill(amount);
  await page.getByLabel('What it is for').fill(description);
  await page.getByLabel(/Customer e-mail/).fill('ada@example.com');
  await page.getByRole('button', { name: 'Create the payment link' }).click();
  const url = page.locator('#new-link-url');
  await expect(url).toHaveText(/\/pay\/plink_/);
  return (await url.textContent())!;
}

test('the dashboard makes a payment link with its QR code, the shopper pays it, and another link is expired', async ({ page, browser, demo }) => {
  test.slow();
  await openDashboard(page, demo.shop.url);
  const url = await createLink(page, '42.00', 'Invoice 77');
  expect(url.startsWith(demo.vault.url)).toBe(true);
  const qr = page.getByRole('img', { name: 'QR code of the payment link' });
  await expect(qr).toBeVisible();
  expect(await qr.evaluate<number, { naturalWidth: number }>((image) => image.naturalWidth)).toBeGreaterThan(0);
  const linkId = url.split('/').at(-1)!;
  await expect(page.locator(`#link-${linkId}`)).toContainText('active');

  // The shopper opens the link in their own browser.
  const shopper = await browser.newContext();
  try {
    const pay = await shopper.newPage();
    await pay.goto(url);
    await expect(pay.getByRole('heading', { level: 1 })).toHaveText('€42.00');
    await expect(pay.locator('#pay-button')).toBeEnabled({ timeout: 15_000 });
    const fields = pay.locator('#card iframe').contentFrame();
    await fields.locator('#number').pressSequentially(CARDS.visa.number);
    await fields.locator('#expiry').pressSequentially(nextYearExpiry());
    await fields.locator('#cvc').pressSequentially('123');
    await pay.locator('#pay-button').click();
    await expect(pay.locator('#pay-outcome h2')).toHaveText('Payment received');
  } finally {
    await shopper.close();
  }

  await page.reload();
  await expect(page.locator(`#link-${linkId}`)).toContainText('completed');
  expect((await demo.vaultGet(`/v1/payment-links/${linkId}`)).customer_email).toBe('ada@example.com');

  const second = (await createLink(page, '10.00', 'Deposit')).split('/').at(-1)!;
  await page.getByRole('button', { name: `Expire payment link ${second}` }).click();
  await expect(page.locator(`#link-${second}`)).toContainText('expired');
  expect((await demo.vaultGet(`/v1/payment-links/${second}`)).status).toBe('expired');
});

test('the dashboard captures every authorized order as one batch and shows its progress and results', async ({ page, demo }) => {
  test.slow();
  await openDashboard(page, demo.shop.url);
  const capture = page.getByRole('checkbox', { name: /Capture payments at checkout/ });
  await capture.uncheck();
  await expect(page.getByRole('status').first()).toHaveText('Setting saved.');
  try {
    const orders: string[] = [];
    for (const product of ['Tile nippers', 'Fibreglass mesh (1 m²)']) {
      await fillCart(page, demo.shop.url, [product]);
      await page.goto(`${demo.shop.url}/checkout.html`);
      await typeCard(page, CARDS.visa, nextYearExpiry());
      await page.getByRole('button', { name: /^Pay/ }).click();
      orders.push(await confirmedOrderId(page));
    }
    await openDashboard(page, demo.shop.url);
    for (const order of orders) await expect(page.locator(`#order-${order}`)).toContainText('authorized');

    await page.getByRole('button', { name: 'Capture all authorized' }).click();
    await expect(page.locator('#batch-progress')).toHaveText(/^Capture batch done: \d+ captured, 0 failed\.$/);
    for (const order of orders) {
      await expect(page.locator('#batch-results')).toContainText(`Order ${order}: captured`);
      await expect(page.locator(`#order-${order}`)).toContainText('captured');
      expect((await demo.vaultGet(`/v1/payments?reference=${order}`)).data[0]).toMatchObject({ status: 'captured' });
    }
  } finally {
    await openDashboard(page, demo.shop.url);
    await page.getByRole('checkbox', { name: /Capture payments at checkout/ }).check();
  }
});
