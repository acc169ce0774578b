/**
 * Where and how often the card can be mounted: two on one page, inside a
 * shadow root, and on a 320 px wide screen.
 */
import { CARDS } from '../support/cards.ts';
import { expect, readToken, test } from './fixtures.ts';
import type { ShopPage } from './support/harness.ts';
import { LOCALES } from '../../widget/fields/i18n/locales.ts';

test('two cards on one page tokenize independently, and typing in one leaves the other untouched', async ({ openShop, env }) => {
  const shop = await openShop();
  await shop.mount('card-a', { mode: 'payment' });
  await shop.mount('card-b', { mode: 'signup' }, { bySelector: true });
  await shop.ready('card-a');
  await shop.ready('card-b');
  const [a, b] = [shop.fields('card-a'), shop.fields('card-b')];

  await shop.typeCard('card-a', CARDS.visa);
  await expect.poll(async () => (await shop.events('card-a', 'change')).at(-1)?.detail).toMatchObject({ complete: true, empty: false, brand: 'visa' });
  await expect(b.locator('#number')).toHaveValue('');
  await expect(b.locator('#cvc')).toHaveValue('');
  expect((await shop.events('card-b', 'change')).filter((event) => !event.detail.empty)).toEqual([]);
  expect(await shop.events('card-b', 'focus')).toEqual([]);

  await shop.typeCard('card-b', CARDS.mastercard);
  await expect(a.locator('#number')).toHaveValue(CARDS.visa.spaced);
  const [first, second] = await Promise.all([shop.tokenize('card-a'), shop.tokenize('card-b')]);
  expect(first).toMatchObject({ ok: true, value: { reusable: false, card: { brand: 'visa', last4: '4242' } } });
  expect(second).toMatchObject({ ok: true, value: { reusable: true, card: { brand: 'mastercard', last4: '4444' } } });
  if (!first.ok || !second.ok) return;
  expect(first.value.token).not.toBe(second.value.token);
  expect(await readToken(env, first.value.token)).toMatchObject({ reusable: false, card: { last4: '4242' } });
  expect(await readToken(env, second.value.token)).toMatchObject({ reusable: true, card: { last4: '4444' } });
});

test('a card mounted inside a shadow root works like any other', async ({ openShop, env }) => {
  const shop = await openShop();
  await shop.mountReady('card', { mode: 'payment' }, { shadow: true });
  expect(await shop.placement('card')).toEqual({ inLightDom: false, inShadow: true });

  await shop.typeCard('card', CARDS.visa);
  const outcome = await shop.tokenize('card');
  expect(outcome).toMatchObject({ ok: true, value: { card: { last4: '4242' } } });
  if (outcome.ok) expect(await readToken(env, outcome.value.token)).toMatchObject({ card: { brand: 'visa' } });
});

test.describe('on a 320 px wide screen', () => {
  test.use({ viewport: { width: 320, height: 720 } });

  test('nothing overflows, in the frame or on the page, in any locale, even with every field and every error showing', async ({ openShop, page }, testInfo) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', saveCard: 'optional', fields: { name: true, postalCode: true } });
    for (const locale of LOCALES) {
      await shop.update('card', { locale });
      await expect(fields.locator('html')).toHaveAttribute('lang', locale);
      // Every field in its error state: the longest texts there are.
      expect(await shop.tokenize('card')).toMatchObject({ ok: false, error: { code: 'validation_error' } });
      await expect(fields.locator('[aria-invalid=true]')).toHaveCount(5);
      // The loader applies the height the fields report, so the whole form shows.
      await expect
        .poll(async () => {
          const frameHeight = await page.locator('#card iframe').evaluate((frame) => frame.getBoundingClientRect().height);
          const contentHeight = await fields.locator('html').evaluate((html) => html.scrollHeight);
          return Math.abs(frameHeight - contentHeight);
        }, { message: locale })
        .toBeLessThanOrEqual(1);

      const inFrame = await fields.locator('html').evaluate((html) => ({ scrollWidth: html.scrollWidth, clientWidth: html.clientWidth }));
      expect(inFrame.clientWidth).toBeGreaterThan(200);
      expect(inFrame.scrollWidth, locale).toBeLessThanOrEqual(inFrame.clientWidth);
      const clipped = await fields.locator('label, .e').evaluateAll((elements) => elements.filter((element) => element.scrollWidth > element.clientWidth + 1).length);
      expect(clipped, `${locale}: labels and messages wrap rather than overflow`).toBe(0);
      for (const selector of ['#card', 'html']) {
        const onPage = await shop.overflow(selector);
        expect(onPage.scrollWidth, `${selector} on the merchant page (${locale})`).toBeLessThanOrEqual(onPage.clientWidth);
      }
      const frameBox = await page.locator('#card iframe').boundingBox();
      const slotBox = await page.locator('#card').boundingBox();
      expect(frameBox!.width).toBeLessThanOrEqual(slotBox!.width);
      await shop.clear('card');
    }
    await shop.update('card', { locale: 'de' });
    expect(await shop.tokenize('card')).toMatchObject({ ok: false });
    await page.screenshot({ path: testInfo.outputPath('card-at-320px.png'), fullPage: true });
  });
});

test.describe('colour scheme', () => {
  test.use({ colorScheme: 'dark' });

  /** The fields' own colour scheme, and how light (0–1) their label text is. */
  async function fieldsLook(shop: ShopPage): Promise<{ colorScheme: string; labelLightness: number }> {
    const fields = await shop.mountReady('card', { mode: 'payment' });
    const colorScheme = await fields.locator('html').evaluate((html) => html.ownerDocument.defaultView!.getComputedStyle(html).colorScheme);
    const color = await fields.locator('label[for=number]').evaluate((label) => label.ownerDocument.defaultView!.getComputedStyle(label).color);
    const [r = 0, g = 0, b = 0] = (color.match(/\d+/g) ?? []).map(Number);
    return { colorScheme, labelLightness: (Math.max(r, g, b) + Math.min(r, g, b)) / 2 / 255 };
  }

  test('on a page whose CSS says `color-scheme: light dark`, the fields turn dark with the shopper’s system', async ({ openShop, page }) => {
    const shop = await openShop();
    await page.addStyleTag({ content: ':root { color-scheme: light dark; }' });
    const look = await fieldsLook(shop);
    expect(look.colorScheme).toBe('dark');
    expect(look.labelLightness).toBeGreaterThan(0.5);
  });

  test('on a page that says `light dark` with <meta name="color-scheme">, the fields turn dark with the shopper’s system', async ({ openShop }) => {
    // pages/shop.html declares `light dark` with the meta tag only.
    const shop = await openShop();
    const look = await fieldsLook(shop);
    expect(look.colorScheme).toBe('dark');
    expect(look.labelLightness).toBeGreaterThan(0.5);
  });
});
