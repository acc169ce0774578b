/**
 * The ES module build (`/v1/tessera.mjs`) and the `<tessera-card>` custom
 * element, as a shop that uses a bundler and markup would embed them.
 */
import { CARDS } from '../support/cards.ts';
import { expect, readToken, test } from './fixtures.ts';

// The callbacks below run in the page; this project's Node types have no DOM, hence `globalThis as any`.

test('tessera.mjs loads checkout.js from the vault, and <tessera-card> tokenizes, re-emits the card events and takes update()', async ({ page, env }) => {
  await page.goto(`${env.pageUrl(env.merchantSite, 'element.html')}&pk=${env.merchant.publishableKey}`);
  await expect.poll(() => page.evaluate(() => (globalThis as any).events.map((e: { type: string }) => e.type)), { timeout: 15_000 }).toContain('ready');
  const fields = page.frameLocator('tessera-card iframe');

  await fields.locator('#number').pressSequentially(CARDS.amex.number);
  await fields.locator('#expiry').pressSequentially(`12${String(new Date().getFullYear() + 1).slice(2)}`);
  await fields.locator('#cvc').pressSequentially(CARDS.amex.cvc);
  await fields.getByRole('checkbox').check();
  const changes = await page.evaluate(() => (globalThis as any).events.filter((e: { type: string }) => e.type === 'change'));
  expect(changes.at(-1).detail).toMatchObject({ brand: 'american-express', complete: true });

  // update() on the element's card reaches the fields: the locale switches to French.
  await page.evaluate(() => (globalThis as any).document.querySelector('tessera-card').card.update({ locale: 'fr' }));
  await expect(fields.locator('html')).toHaveAttribute('lang', 'fr');
  await expect(fields.locator('#number')).toHaveValue('3782 822463 10005');

  const result = await page.evaluate(() => (globalThis as any).document.querySelector('tessera-card').tokenize());
  expect(result).toMatchObject({ reusable: true, card: { brand: 'american-express', last4: '0005' } });
  expect(await readToken(env, result.token)).toMatchObject({ reusable: true, customer: 'cus_element', card: { last4: '0005' } });

  // Removing the element destroys its card: its frame goes away, and a hidden one keeps the vault's renderer for the next card.
  await page.evaluate(() => (globalThis as any).document.querySelector('tessera-card').remove());
  await expect(page.locator('tessera-card iframe')).toHaveCount(0);
  await expect(page.locator('iframe')).toHaveCount(1);
  await expect(page.locator('iframe')).toBeHidden();
});

test('<tessera-card> follows changes to its attributes: mode, locale and the fields it collects', async ({ page, env }) => {
  await page.goto(`${env.pageUrl(env.merchantSite, 'element.html')}&pk=${env.merchant.publishableKey}`);
  await expect.poll(() => page.evaluate(() => (globalThis as any).events.map((e: { type: string }) => e.type)), { timeout: 15_000 }).toContain('ready');
  const fields = page.frameLocator('tessera-card iframe');
  await expect(fields.getByRole('group', { name: 'Pay by card' })).toBeAttached();
  await expect(fields.getByRole('checkbox', { name: 'Save this card for next time' })).toBeVisible();
  await expect(fields.locator('#name')).toHaveCount(0);

  const setAttribute = (name: string, value: string) =>
    page.evaluate(([n, v]) => (globalThis as any).document.querySelector('tessera-card').setAttribute(n, v), [name, value] as const);
  await setAttribute('mode', 'signup');
  await expect(fields.getByRole('group', { name: 'Save card' })).toBeAttached();
  await expect(fields.getByRole('checkbox')).toHaveCount(0);
  await setAttribute('collect-name', '');
  await expect(fields.locator('#name')).toBeVisible();
  await setAttribute('locale', 'de');
  await expect(fields.locator('html')).toHaveAttribute('lang', 'de');
  await expect(fields.getByLabel('Name auf der Karte')).toBeVisible();
  await page.evaluate(() => (globalThis as any).document.querySelector('tessera-card').removeAttribute('collect-name'));
  await expect(fields.locator('#name')).toHaveCount(0);
  // The same card all along: one ready, and the same frame.
  expect(await page.evaluate(() => (globalThis as any).events.filter((e: { type: string }) => e.type === 'ready').length)).toBe(1);
});
