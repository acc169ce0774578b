/**
 * The demo shop's main pages at a desktop width (1280 px) and a phone width
 * (375 px): written as screenshots into the test output, checked with axe
 * (labels, landmarks, one h1) and for sideways scrolling. With
 * `TESSERA_UPDATE_SCREENSHOTS=1` the checkout at 1280 px is also written to
 * docs/checkout.png, the one the README shows.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Page, TestInfo } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { DASHBOARD_PASSWORD } from '../support/shop.ts';
import { cardFields, confirmedOrderId, expect, fieldsReady, fillCart, signUp, test, typeCard } from './support/demo.ts';

const WIDTHS = [1280, 375] as const;
const DOCS_SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'checkout.png');

/** The fields frame follows its content's height (after a resize too): wait until it has, where the page has one. */
async function fieldsFrameFitted(page: Page): Promise<void> {
  const frame = page.locator('#card-fields iframe');
  if ((await frame.count()) === 0) return;
  await expect
    .poll(async () => {
      const frameHeight = await frame.evaluate((element) => element.getBoundingClientRect().height);
      const contentHeight = await cardFields(page)
        .locator('html')
        .evaluate((html) => Math.ceil(html.getBoundingClientRect().height));
      return Math.abs(frameHeight - contentHeight);
    })
    .toBeLessThanOrEqual(1);
}

async function capture(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await fieldsFrameFitted(page);
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow, `${name} at ${width} px scrolls sideways`).toBeLessThanOrEqual(0);
    const path = testInfo.outputPath(`${name}-${width}.png`);
    await page.screenshot({ path, fullPage: true, animations: 'disabled', caret: 'hide' });
    if (name === 'checkout' && width === 1280 && process.env['TESSERA_UPDATE_SCREENSHOTS'] === '1') copyFileSync(path, DOCS_SCREENSHOT);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  const results = await new AxeBuilder({ page }).analyze();
  const violations = results.violations.flatMap((rule) => rule.nodes.map((node) => `${rule.id}: ${JSON.stringify(node.target)} — ${node.failureSummary}`));
  expect(violations, `axe on ${name}`).toEqual([]);
  await expect(page.locator('h1')).toHaveCount(1);
}

test('checkout, sign-up, account and dashboard at 1280 and 375 px: screenshots, no sideways scrolling, no axe violations', async ({ page, demo }, testInfo) => {
  test.setTimeout(90_000);
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });

  // Checkout, as the README shows it: the cart and the test card typed in.
  await fillCart(page, demo.shop.url);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await typeCard(page, { number: CARDS.visa.number, cvc: '123' }, '1234');
  await page.locator('h1').click();
  await capture(page, testInfo, 'checkout');

  await signUp(page, demo.shop.url);
  await fieldsReady(page);
  await capture(page, testInfo, 'signup');
  await typeCard(page, CARDS.visa);
  await page.getByRole('button', { name: 'Save card' }).click();
  await expect(page.locator('#card-list')).toContainText('Visa •••• 4242');
  await fieldsReady(page);
  await capture(page, testInfo, 'account');

  await fillCart(page, demo.shop.url, ['Gold leaf tesserae (100 pcs)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await fieldsReady(page);
  await cardFields(page).locator('#cvc').pressSequentially(CARDS.visa.cvc);
  await page.getByRole('button', { name: /^Pay/ }).click();
  await confirmedOrderId(page);
  await page.goto(`${demo.shop.url}/dashboard.html`);
  await page.getByLabel('Dashboard password').fill(DASHBOARD_PASSWORD);
  await page.getByRole('button', { name: 'Open the dashboard' }).click();
  await expect(page.locator('#orders-table tbody')).toContainText('captured');
  await expect(page.locator('#deliveries-table tbody')).toContainText('payment.captured');
  await expect(page.locator('#deliveries-table tbody')).not.toContainText('pending');
  await capture(page, testInfo, 'dashboard');
});
