/**
 * Which language the fields speak: `locale: 'auto'` follows the shopper's
 * browser languages, a locale that is not English never holds up `ready`,
 * and right-to-left locales lay the form out from the right.
 */
import type { Route } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { expect, test } from './fixtures.ts';

test.describe('a browser set to Canadian French', () => {
  test.use({ locale: 'fr-CA' });

  test('locale auto shows French, the nearest locale the fields speak', async ({ openShop }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', locale: 'auto' });
    await expect(fields.locator('html')).toHaveAttribute('lang', 'fr');
    await expect(fields.getByLabel('Numéro de carte')).toBeVisible();
  });

  test('a locale the merchant chose wins over the browser’s', async ({ openShop }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', locale: 'nl' });
    await expect(fields.locator('html')).toHaveAttribute('lang', 'nl');
    await expect(fields.getByLabel('Kaartnummer')).toBeVisible();
  });
});

test.describe('a browser set to Swedish', () => {
  test.use({ locale: 'sv-SE' });

  test('locale auto falls back to English', async ({ openShop }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment' });
    await expect(fields.locator('html')).toHaveAttribute('lang', 'en');
    await expect(fields.getByLabel('Card number')).toBeVisible();
  });
});

test('a locale that is slow to arrive does not hold up ready: the card shows English until it comes, then the shopper’s language', async ({ openShop, page }) => {
  const held: Route[] = [];
  let holding = true;
  await page.route(
    (url) => /^\/v1\/assets\/assets\/ja-/.test(url.pathname),
    (route) => (holding ? void held.push(route) : route.fallback()),
  );
  const shop = await openShop();
  const fields = await shop.mountReady('card', { mode: 'payment', locale: 'ja' });
  // The chunk is asked for before the first render, but its request can reach the route after `ready` reaches the test.
  await expect.poll(() => held.length, { message: 'the Japanese chunk was asked for' }).toBeGreaterThan(0);
  await expect(fields.locator('html')).toHaveAttribute('lang', 'en');
  await expect(fields.getByLabel('Card number')).toBeVisible();

  holding = false;
  for (const route of held) await route.fallback();
  await expect(fields.locator('html')).toHaveAttribute('lang', 'ja');
  await expect(fields.getByLabel('カード番号')).toBeVisible();
  // What the shopper typed meanwhile stays.
  await fields.locator('#number').pressSequentially(CARDS.visa.number);
  await shop.update('card', { locale: 'he' });
  await expect(fields.locator('html')).toHaveAttribute('lang', 'he');
  await expect(fields.locator('#number')).toHaveValue(CARDS.visa.spaced);
});

for (const locale of ['ar', 'he'] as const) {
  test(`in ${locale} the form reads right to left, while the number, expiry and CVC are still written left to right`, async ({ openShop }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', locale });
    await expect(fields.locator('html')).toHaveAttribute('dir', 'rtl');
    for (const id of ['number', 'expiry', 'cvc']) await expect(fields.locator(`#${id}`)).toHaveAttribute('dir', 'ltr');
    await fields.locator('#number').pressSequentially(CARDS.visa.number);
    // The brand mark sits at the end of the line, which in a right-to-left form is its left.
    const input = await fields.locator('#number').boundingBox();
    const mark = await fields.getByRole('img', { name: 'Visa' }).boundingBox();
    expect(mark!.x + mark!.width / 2).toBeLessThan(input!.x + input!.width / 2);
    // The expiry comes first from the right.
    const [expiry, cvc] = [await fields.locator('#expiry').boundingBox(), await fields.locator('#cvc').boundingBox()];
    expect(expiry!.x).toBeGreaterThan(cvc!.x);
  });
}
