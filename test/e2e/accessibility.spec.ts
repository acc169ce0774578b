/**
 * Accessibility of the fields document: axe-core in every mode, locale and
 * colour scheme (scanned through the merchant page: AxeBuilder analyses
 * cross-origin frames too); Windows high contrast; 200 % zoom; and what
 * screen readers hear from the live region.
 *
 * The matrix is one card per locale that is switched through the modes and
 * both schemes with `update()`, scanned after each switch with axe run in
 * the fields document: every combination, without a page load or an axe
 * injection per combination. One scan of the whole merchant page checks the
 * card as part of it.
 */
import AxeBuilder from '@axe-core/playwright';
import type { Frame, FrameLocator, Page } from '@playwright/test';
import axe from 'axe-core';
import { CARDS } from '../support/cards.ts';
import type { CardOptions } from '../../widget/shared/messages.ts';
import type { Messages } from '../../widget/fields/i18n/en.ts';
import { LOCALES, RTL, type LocaleTag } from '../../widget/fields/i18n/locales.ts';
import { expect, isFieldsDocument, test } from './fixtures.ts';
import { futureExpiry, type ShopPage } from './support/harness.ts';

const ALL_FIELDS: CardOptions = { mode: 'payment', saveCard: 'optional', fields: { name: true, postalCode: true } };

/** The states scanned in each locale and scheme; every option is given, since `update()` keeps what it is not given. */
const STATES: Array<{ name: string; options: CardOptions; errors?: boolean }> = [
  { name: 'signup mode', options: { mode: 'signup', saveCard: undefined, fields: { name: false, postalCode: false } } },
  { name: 'cvc mode', options: { mode: 'cvc', token: 'tok_saved', brand: 'visa', last4: '4242', fields: { name: false, postalCode: false } } },
  // Payment mode with every field, each showing its error (an error paragraph is not rendered while empty, so this covers the clean form too).
  { name: 'payment mode with an error on every field', options: { ...ALL_FIELDS, token: undefined, brand: undefined, last4: undefined }, errors: true },
];

/** A locale's texts and direction, from its source file (the fields load the built chunk of the same file). */
async function loadLocale(lang: LocaleTag): Promise<{ messages: Messages; dir: 'ltr' | 'rtl' }> {
  const module = (await import(`../../widget/fields/i18n/${lang}.ts`)) as Record<string, Messages>;
  return { messages: module[lang]!, dir: RTL.includes(lang) ? 'rtl' : 'ltr' };
}

/**
 * Violations on the whole page, the fields frame included, and how many
 * nodes axe checked inside the frame. The whole page, not just the frame:
 * page-level rules (one main landmark, one h1, content inside landmarks)
 * belong to the merchant's document, which holds the frame in its <main>.
 */
async function scanCard(page: Page): Promise<{ violations: string[]; nodesInFrame: number }> {
  // AxeBuilder silently leaves out a frame that does not answer its injection in time (seen on a loaded
  // machine): a scan that saw nothing inside the frame is repeated, a bounded number of times.
  let results = await new AxeBuilder({ page }).analyze();
  let nodesInFrame = countFrameNodes(results.passes);
  for (let attempt = 1; attempt < 3 && nodesInFrame === 0; attempt++) {
    results = await new AxeBuilder({ page }).analyze();
    nodesInFrame = countFrameNodes(results.passes);
  }
  const violations = results.violations.flatMap((rule) => rule.nodes.map((node) => `${rule.id} (${rule.impact}): ${JSON.stringify(node.target)} — ${node.failureSummary}`));
  return { violations, nodesInFrame };
}

const countFrameNodes = (passes: { nodes: { target: unknown[] }[] }[]) =>
  passes.flatMap((rule) => rule.nodes).filter((node) => node.target.length > 1).length;

/**
 * axe-core run in the fields document itself, injected once per frame
 * (AxeBuilder injects its 1.3 MB into every frame on every scan, which the
 * matrix cannot afford). Without the rules about a whole page (one main
 * landmark, a first-level heading, content in landmarks, a way to bypass
 * blocks): they are the merchant page's, which is why axe applies them to
 * the top document only when it scans a page with frames.
 */
async function scanFieldsDocument(frame: Frame): Promise<{ violations: string[]; checked: number }> {
  if (!(await frame.evaluate(() => 'axe' in globalThis))) await frame.evaluate(axe.source);
  const results = (await frame.evaluate(
    (rules) => (globalThis as any).axe.run((globalThis as any).document, { rules }),
    Object.fromEntries(PAGE_RULES.map((rule) => [rule, { enabled: false }])),
  )) as axe.AxeResults;
  return {
    violations: results.violations.flatMap((rule) => rule.nodes.map((node) => `${rule.id} (${rule.impact}): ${JSON.stringify(node.target)} — ${node.failureSummary}`)),
    checked: results.passes.flatMap((rule) => rule.nodes).length,
  };
}

const PAGE_RULES = ['region', 'landmark-one-main', 'page-has-heading-one', 'bypass'];

/**
 * Paints the fields' root with the colour the shopper sees through the
 * transparent frame, the page's canvas where the card sits. axe cannot look
 * through a cross-origin frame and takes what is behind its text to be
 * white, which on a dark page is not what anyone sees.
 */
async function showPageBackgroundInFrame(shop: ShopPage): Promise<void> {
  const colour = await shop.page.evaluate(() => {
    const doc = (globalThis as any).document;
    const probe = doc.createElement('div');
    probe.style.background = 'Canvas';
    doc.getElementById('card').append(probe);
    const value = (globalThis as any).getComputedStyle(probe).backgroundColor as string;
    probe.remove();
    return value;
  });
  await (await shop.frame('card')).evaluate((value) => {
    (globalThis as any).document.documentElement.style.backgroundColor = value;
  }, colour);
}

for (const locale of LOCALES) {
  test(`axe finds no violation in the fields in ${locale}, in every mode, light and dark, with and without errors`, async ({ openShop, page }) => {
    test.slow();
    const shop = await openShop();
    const fields = await shop.mountReady('card', { ...ALL_FIELDS, locale });
    const { dir, messages } = await loadLocale(locale);
    const legends = { payment: messages.paymentLegend, signup: messages.signupLegend, cvc: messages.cvcLegend, moto: messages.motoLegend };
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const state of STATES) {
        const where = `${locale}, ${scheme}, ${state.name}`;
        await shop.clear('card');
        await shop.update('card', { ...state.options, locale });
        await expect(fields.locator('html'), where).toHaveAttribute('lang', locale);
        await expect(fields.locator('html'), where).toHaveAttribute('dir', dir);
        await expect(fields.locator('html'), where).toHaveClass(scheme === 'dark' ? /dark/ : /^(?!.*dark)/);
        await expect(fields.locator('legend'), where).toHaveText(legends[state.options.mode!]);
        if (state.errors) {
          expect(await shop.tokenize('card')).toMatchObject({ ok: false, error: { code: 'validation_error' } });
          await expect(fields.locator('[aria-invalid=true]'), where).toHaveCount(5);
        }
        await showPageBackgroundInFrame(shop);
        const { violations, checked } = await scanFieldsDocument(await shop.frame('card'));
        expect(checked, `axe checked nodes in the fields (${where})`).toBeGreaterThan(20);
        expect(violations, where).toEqual([]);
      }
    }
  });
}

test('axe finds no violation on the merchant page with the card in it, every field showing an error', async ({ openShop, page }) => {
  const shop = await openShop();
  const fields = await shop.mountReady('card', ALL_FIELDS);
  expect(await shop.tokenize('card')).toMatchObject({ ok: false, error: { code: 'validation_error' } });
  await expect(fields.locator('[aria-invalid=true]')).toHaveCount(5);
  const { violations, nodesInFrame } = await scanCard(page);
  expect(nodesInFrame, 'axe checked nodes inside the fields frame').toBeGreaterThan(5);
  expect(violations).toEqual([]);
});

/** The computed style of `selector` inside the fields, as plain values. */
async function computed(fields: FrameLocator, selector: string, properties: string[]): Promise<Record<string, string>> {
  return fields.locator(selector).evaluate((element, names) => {
    const style = element.ownerDocument.defaultView!.getComputedStyle(element);
    return Object.fromEntries(names.map((name) => [name, style.getPropertyValue(name)]));
  }, properties);
}

test.describe('Windows high contrast (forced colors)', () => {
  test.use({ forcedColors: 'active' });

  test('every input keeps a visible border, an invalid one a different border, focus a visible outline, and every error its text', async ({ openShop, page }, testInfo) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', ALL_FIELDS);
    // Playwright emulates forced colors per DevTools target. The warm frame checkout.js makes shares the vault
    // renderer's page with the fields frame, and when it goes, Chromium drops that page's emulated media with its
    // target (a DevTools artifact: a shopper's forced colors are the system's, in every renderer). So the
    // emulation is set again once the warm frame is gone.
    await expect(page.locator('iframe[src$="/v1/fields/warm"]')).toHaveCount(0);
    await page.emulateMedia({ forcedColors: 'active' });
    expect(await fields.locator('html').evaluate((html) => html.ownerDocument.defaultView!.matchMedia('(forced-colors: active)').matches)).toBe(true);
    await fields.locator('#number').pressSequentially(CARDS.visa.number);
    expect(await shop.tokenize('card')).toMatchObject({ ok: false, error: { code: 'validation_error', param: 'name' } });
    await expect(fields.locator('[aria-invalid=true]')).toHaveCount(4);

    for (const id of ['name', 'number', 'expiry', 'cvc', 'postal_code']) {
      const style = await computed(fields, `#${id}`, ['border-top-width', 'border-top-style', 'border-top-color', 'background-color']);
      expect(parseFloat(style['border-top-width']!), `#${id} has a border`).toBeGreaterThanOrEqual(1);
      expect(style['border-top-color'], `#${id}'s border shows against its background`).not.toBe(style['background-color']);
      expect(style['border-top-style'], `#${id}'s border says whether it is invalid without colour`).toBe(id === 'number' ? 'solid' : 'double');
      if (id !== 'number') await expect(fields.locator(`#${id}-error`)).toBeVisible();
    }
    await fields.locator('#cvc').focus();
    const focus = await computed(fields, '#cvc', ['outline-style', 'outline-width', 'outline-color', 'background-color']);
    expect(focus['outline-style']).toBe('solid');
    expect(parseFloat(focus['outline-width']!)).toBeGreaterThanOrEqual(2);
    expect(focus['outline-color']).not.toBe(focus['background-color']);
    const error = await computed(fields, '#cvc-error', ['color', 'background-color']);
    expect(error['color']).not.toBe(error['background-color']);
    await shop.page.screenshot({ path: testInfo.outputPath('card-in-forced-colors.png') });
  });
});

test.describe('at 200 % zoom', () => {
  // A 1280 × 720 window zoomed to 200 %: what the page lays out in is 640 × 360 CSS pixels, drawn at twice the density.
  test.use({ viewport: { width: 640, height: 360 }, deviceScaleFactor: 2 });

  test('every field, label and error shows whole, the longest number fits its input, and the card can be typed and tokenized', async ({ openShop, page }, testInfo) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { ...ALL_FIELDS, locale: 'de' });
    expect(await page.evaluate(() => (globalThis as any).devicePixelRatio)).toBe(2);
    expect(await shop.tokenize('card')).toMatchObject({ ok: false });
    await expect(fields.locator('[aria-invalid=true]')).toHaveCount(5);

    const clipped = await fields.locator('label, .e, legend + *').evaluateAll((elements) =>
      elements.filter((element) => element.scrollWidth > element.clientWidth + 1).map((element) => element.outerHTML.slice(0, 60)),
    );
    expect(clipped).toEqual([]);
    const frame = await fields.locator('html').evaluate((html) => ({ scrollWidth: html.scrollWidth, clientWidth: html.clientWidth, height: html.scrollHeight }));
    expect(frame.scrollWidth).toBeLessThanOrEqual(frame.clientWidth);
    await expect.poll(() => page.locator('#card iframe').evaluate((iframe) => Math.round(iframe.getBoundingClientRect().height))).toBe(frame.height);

    await shop.clear('card');
    await fields.locator('#name').fill('Ada Lovelace');
    await fields.locator('#number').pressSequentially(CARDS.visa.number);
    const number = await fields.locator('#number').evaluate((input) => ({ scrollWidth: input.scrollWidth, clientWidth: input.clientWidth }));
    expect(number.scrollWidth, 'the whole number shows in its input').toBeLessThanOrEqual(number.clientWidth);
    await fields.locator('#expiry').pressSequentially(futureExpiry());
    await fields.locator('#cvc').pressSequentially(CARDS.visa.cvc);
    await fields.locator('#postal_code').pressSequentially('10115');
    expect(await shop.tokenize('card')).toMatchObject({ ok: true, value: { card: { last4: '4242' } } });
    await page.screenshot({ path: testInfo.outputPath('card-at-200-percent.png'), fullPage: true });
  });
});

/** Makes the vault answer the fields' POST /v1/tokens with `error` until `unroute`. */
async function vaultRefuses(page: Page, status: number, error: Record<string, string>): Promise<() => Promise<void>> {
  const matcher = (url: URL) => url.pathname === '/v1/tokens';
  await page.route(matcher, (route) =>
    route.request().method() === 'POST' && isFieldsDocument(route.request().frame().url())
      ? route.fulfill({ status, contentType: 'application/json', body: JSON.stringify({ error }) })
      : route.fallback(),
  );
  return () => page.unroute(matcher);
}

/** What each field, left with `value`, makes the live region say. */
const FIELD_ERRORS: Array<[field: string, value: string, message: keyof Messages]> = [
  ['name', ' ', 'incomplete_name'],
  ['name', '4242 4242 4242 4242', 'card_number_not_allowed'],
  ['number', '4242', 'incomplete_number'],
  ['number', '4242424242424241', 'invalid_number'],
  ['expiry', '12', 'incomplete_expiry'],
  ['expiry', '1330', 'invalid_expiry_month'],
  ['expiry', '0120', 'expiry_in_past'],
  ['cvc', '5', 'incomplete_cvc'],
  ['postal_code', '1', 'incomplete_postal_code'],
  ['postal_code', '4242-4242-4242-4242', 'card_number_not_allowed'],
];

/** What each refusal of the vault makes the live region say. */
const VAULT_REFUSALS: Array<[status: number, code: string, message: keyof Messages]> = [
  [422, 'card_not_accepted', 'card_not_accepted'],
  [429, 'rate_limited', 'rate_limited'],
  [503, 'unavailable', 'network_error'],
  [400, 'stale_ciphertext', 'failed'],
];

for (const locale of ['en', 'he'] as const) {
  test(`the live region announces each field's error as it shows, each refusal of the vault and the success, in ${locale}`, async ({ openShop, page }) => {
    const { messages } = await loadLocale(locale);
    const shop = await openShop();
    const fields = await shop.mountReady('card', { ...ALL_FIELDS, locale });
    await expect(fields.locator('html')).toHaveAttribute('lang', locale);
    const status = fields.getByRole('status');
    await expect(status).toHaveText('');

    for (const [field, value, message] of FIELD_ERRORS) {
      await fields.locator(`#${field}`).fill(value);
      // Shown, and announced, when the shopper leaves the field.
      await fields.locator(field === 'cvc' ? '#number' : '#cvc').focus();
      await expect(status, `${field} = ${JSON.stringify(value)}`).toHaveText(messages[message]);
      await expect(fields.locator(`#${field}-error`)).toHaveText(messages[message]);
    }

    for (const [field, value] of [['name', 'Ada Lovelace'], ['number', CARDS.visa.number], ['expiry', futureExpiry()], ['cvc', CARDS.visa.cvc], ['postal_code', '10115']] as const) {
      await fields.locator(`#${field}`).fill(value);
    }
    for (const [httpStatus, code, message] of VAULT_REFUSALS) {
      const unroute = await vaultRefuses(page, httpStatus, { type: 'invalid_request', code, message: 'The vault said no.' });
      expect(await shop.tokenize('card'), code).toMatchObject({ ok: false, error: { code } });
      await expect(status, code).toHaveText(messages[message]);
      await unroute();
    }
    expect(await shop.tokenize('card')).toMatchObject({ ok: true });
    await expect(status).toHaveText(messages.sent);
  });
}
