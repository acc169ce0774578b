/**
 * Merchant styles are data: each rejected entry is dropped with a console
 * warning, the accepted ones apply, and the fields frame talks to nobody
 * but the vault.
 */
import type { ConsoleMessage, Frame, Request } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { expect, isFieldsDocument, test } from './fixtures.ts';

/** One entry per kind of value the allow-list refuses, each on a property of its own. */
const REJECTED = [
  { why: 'url(', state: 'base', property: 'backgroundColor', value: 'url(https://evil.example/pixel.png)' },
  { why: '@import', state: 'base', property: 'fontWeight', value: '@import "https://evil.example/x.css"' },
  { why: 'expression', state: 'base', property: 'caretColor', value: 'expression(alert(1))' },
  { why: 'javascript:', state: 'base', property: 'borderColor', value: 'javascript:alert(1)' },
  { why: ';', state: 'base', property: 'lineHeight', value: '2; position: fixed' },
  { why: '{', state: 'base', property: 'padding', value: '0 { color: red' },
  { why: '}', state: 'base', property: 'textAlign', value: 'left } input { color: red' },
  { why: '<', state: 'base', property: 'textDecoration', value: '<script>' },
  { why: '>', state: 'base', property: 'textTransform', value: 'uppercase>' },
  { why: '\\', state: 'base', property: 'fontStyle', value: '\\69 talic' },
  { why: 'an unknown property', state: 'base', property: 'position', value: 'fixed' },
] as const;

const ACCEPTED = {
  base: { color: 'rgb(17, 34, 51)', fontSize: '19px', letterSpacing: '1.5px', fontFamily: 'monospace' },
  invalid: { color: 'rgb(170, 0, 0)' },
};

function styleOption(): Record<string, Record<string, string>> {
  const style: Record<string, Record<string, string>> = { base: { ...ACCEPTED.base }, invalid: { ...ACCEPTED.invalid } };
  for (const { state, property, value } of REJECTED) (style[state] ??= {})[property] = value;
  return style;
}

const fieldsFrameOf = (frames: Frame[]): Frame | undefined => frames.find((frame) => isFieldsDocument(frame.url()));

test('each rejected style value is dropped with a console warning, and the accepted ones apply', async ({ openShop, env, page }) => {
  // The fields frame's console: warnings logged by the vault's scripts.
  const warnings: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'warning' && URL.canParse(message.location().url) && new URL(message.location().url).origin === env.vault.url) {
      warnings.push(message.text());
    }
  });
  const shop = await openShop();
  const fields = await shop.mountReady('card', { mode: 'payment', style: styleOption() as never });

  await expect.poll(() => warnings.slice().sort()).toEqual(
    REJECTED.map(({ state, property, why }) => `Tessera: style.${state}.${property} was ignored (${why === 'an unknown property' ? 'unknown_property' : 'forbidden_value'}).`).sort(),
  );

  const number = fields.locator('#number');
  await expect(number).toHaveCSS('color', ACCEPTED.base.color);
  await expect(number).toHaveCSS('font-size', ACCEPTED.base.fontSize);
  await expect(number).toHaveCSS('letter-spacing', ACCEPTED.base.letterSpacing);
  await expect(number).toHaveCSS('font-family', ACCEPTED.base.fontFamily);
  // Labels follow the merchant's text colour too.
  await expect(fields.locator('label[for=number]')).toHaveCSS('color', ACCEPTED.base.color);
  // Nothing of the rejected entries reached the input.
  await expect(number).toHaveCSS('position', 'static');
  await expect(number).toHaveCSS('background-image', 'none');
  await expect(number).toHaveCSS('background-color', 'rgb(255, 255, 255)');
  await expect(number).toHaveCSS('text-transform', 'none');
  await expect(number).toHaveCSS('font-style', 'normal');

  // The invalid state's colour applies once the field shows an error.
  await number.pressSequentially('4242424242424241');
  await fields.locator('#expiry').focus();
  await expect(number).toHaveAttribute('aria-invalid', 'true');
  await expect(number).toHaveCSS('color', ACCEPTED.invalid.color);
});

test('the fields frame requests nothing outside the vault origin and logs no error, from loading to tokenizing', async ({ openShop, env, page }) => {
  const requests: Request[] = [];
  page.on('request', (request) => void requests.push(request));
  // Errors the vault's document or scripts log, CSP violations included.
  const errors: string[] = [];
  page.on('console', (message) => {
    const fromVault = URL.canParse(message.location().url) && new URL(message.location().url).origin === env.vault.url;
    // Some CSP reports carry no location at all.
    if (message.type() === 'error' && (fromVault || message.text().includes('Content Security Policy'))) errors.push(message.text());
  });
  const shop = await openShop();
  // A style that would load a resource if it were applied.
  await shop.mountReady('card', { mode: 'payment', style: { base: { backgroundColor: 'url(https://evil.example/pixel.png)' } } as never });
  await shop.typeCard('card', CARDS.visa);
  expect(await shop.tokenize('card')).toMatchObject({ ok: true });

  const fieldsFrame = fieldsFrameOf(page.frames());
  expect(fieldsFrame, 'the page has a fields frame').toBeDefined();
  const fromFields = requests.filter((request) => request.frame() === fieldsFrame).map((request) => request.url());
  const paths = fromFields.map((url) => new URL(url).pathname);
  // What the frame did load: its document, its script and stylesheet, the token request.
  expect(paths).toEqual(expect.arrayContaining(['/v1/fields', expect.stringMatching(/^\/v1\/assets\/.*\.js$/), expect.stringMatching(/^\/v1\/assets\/.*\.css$/), '/v1/tokens']));
  expect(fromFields.filter((url) => new URL(url).origin !== env.vault.url)).toEqual([]);
  expect(requests.map((request) => request.url()).filter((url) => url.includes('evil.example'))).toEqual([]);
  expect(errors).toEqual([]);
});
