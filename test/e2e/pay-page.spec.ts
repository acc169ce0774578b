/**
 * The hosted payment page (`/pay/plink_…`, widget.md "Hosted payment page"):
 * a shopper's journeys on real Chromium — a decline, then another card in
 * the same fields, then the outcome; an expired link — in a left-to-right
 * and a right-to-left locale, axe-clean, at 320 px, with no card data in
 * the page's URL or storage.
 *
 * Not the shared fixtures: their postMessage spy proxies windows, and the
 * page and its fields frame share the vault's origin, where the spy breaks
 * the loader's `event.source === frame.contentWindow` check. The page is
 * the vault's own, so there is no merchant window to audit here.
 */
import AxeBuilder from '@axe-core/playwright';
import { test as base, expect, type Page } from '@playwright/test';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, SANDBOX_CARDS } from '../support/cards.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

interface ShopEnvironment {
  vault: TestVault;
  merchant: TestMerchant;
}

const test = base.extend<{}, { env: ShopEnvironment }>({
  env: [
    async ({}, use) => {
      const vault = await startTestVault({ name: 'e2e-pay' });
      try {
        if (vault.vault.deps.widget.pay === undefined) throw new Error('dist/ has no widget build: run `npm run build` first (npm test does).');
        await use({ vault, merchant: await createMerchant(vault, { name: 'E2E Shop' }) });
      } finally {
        await vault.close();
      }
    },
    { scope: 'worker', timeout: 60_000 },
  ],
});

const nextYearExpiry = () => `12${String((new Date().getFullYear() + 1) % 100).padStart(2, '0')}`;

async function newLink(env: ShopEnvironment, body: Record<string, unknown> = {}): Promise<{ id: string; url: string }> {
  const made = await api(env.vault.url, 'POST', '/v1/payment-links', {
    key: env.merchant.secretKey,
    json: { amount: 4200, currency: 'EUR', description: 'Invoice 77', reference: 'inv-77', ...body },
  });
  expect(made.status, made.text).toBe(201);
  return made.body;
}

async function typeCard(page: Page, number: string): Promise<void> {
  const fields = page.locator('#card iframe').contentFrame();
  await fields.locator('#number').fill('');
  await fields.locator('#number').pressSequentially(number);
  await fields.locator('#expiry').fill('');
  await fields.locator('#expiry').pressSequentially(nextYearExpiry());
  await fields.locator('#cvc').fill('');
  await fields.locator('#cvc').pressSequentially('123');
}

async function axeViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations.flatMap((rule) => rule.nodes.map((node) => `${rule.id}: ${JSON.stringify(node.target)}`));
}

const WORDS = {
  en: { lang: 'en', dir: 'ltr', declined: 'Your card was declined. Try another card.', paid: 'Payment received', expired: 'This payment link has expired' },
  ar: { lang: 'ar', dir: 'rtl', declined: 'تم رفض بطاقتك. جرّب بطاقة أخرى.', paid: 'تم استلام الدفعة', expired: 'انتهت صلاحية رابط الدفع هذا' },
  fr: { lang: 'fr', dir: 'ltr', declined: 'Votre carte a été refusée. Essayez une autre carte.', paid: 'Paiement reçu', expired: 'Ce lien de paiement a expiré' },
} as const;

for (const locale of ['en', 'ar'] as const) {
  test(`a shopper is declined, types another card in the same fields and pays the link (${locale}, 320 px)`, async ({ page, env }) => {
    const words = WORDS[locale];
    // Two axe scans (each several seconds on a loaded machine, the frame included) and two payments.
    test.slow();
    await page.setViewportSize({ width: 320, height: 800 });
    const link = await newLink(env);
    await page.goto(`${link.url}?locale=${locale}`);
    await expect(page.locator('html')).toHaveAttribute('dir', words.dir);
    await expect(page.locator('#pay-button')).toBeEnabled({ timeout: 15_000 });
    expect(await axeViolations(page)).toEqual([]);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(320);

    await typeCard(page, SANDBOX_CARDS.generic_decline);
    await page.locator('#pay-button').click();
    await expect(page.locator('#pay-error')).toHaveText(words.declined);
    await expect(page.locator('#pay-button')).toBeEnabled();

    await typeCard(page, CARDS.visa.number);
    await page.locator('#pay-button').click();
    await expect(page.locator('#pay-outcome h2')).toHaveText(words.paid);
    await expect(page.locator('#pay-outcome')).toBeFocused();
    await expect(page.locator('#card iframe')).toHaveCount(0);
    expect(await axeViolations(page)).toEqual([]);

    const read = await api(env.vault.url, 'GET', `/v1/payment-links/${link.id}`, { key: env.merchant.secretKey });
    expect(read.body).toMatchObject({ status: 'completed', payments_count: 1 });
    const payment = await api(env.vault.url, 'GET', `/v1/payments/${read.body.latest_payment}`, { key: env.merchant.secretKey });
    expect(payment.body).toMatchObject({ status: 'captured', amount: 4200, card: { last4: '4242' } });
    // The page holds no card data: not in its address, not in its storage.
    const kept = await page.evaluate<string>('JSON.stringify({ url: location.href, local: { ...localStorage }, session: { ...sessionStorage } })');
    for (const digits of [CARDS.visa.number, SANDBOX_CARDS.generic_decline]) expect(kept).not.toContain(digits);
  });
}

test('an expired link says so and takes no card, in French and in Arabic', async ({ page, env }) => {
  const link = await newLink(env);
  expect((await api(env.vault.url, 'POST', `/v1/payment-links/${link.id}/expire`, { key: env.merchant.secretKey })).status).toBe(200);
  for (const locale of ['fr', 'ar'] as const) {
    const words = WORDS[locale];
    await page.goto(`${link.url}?locale=${locale}`);
    await expect(page.locator('html')).toHaveAttribute('lang', words.lang);
    await expect(page.locator('.outcome h2')).toHaveText(words.expired);
    await expect(page.locator('iframe')).toHaveCount(0);
    expect(await axeViolations(page)).toEqual([]);
  }
});
