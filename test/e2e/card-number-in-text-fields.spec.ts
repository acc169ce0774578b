/**
 * A card number where it does not belong (the name or postal code) is found
 * in the fields and shown at that field, like any other validation error,
 * before anything is encrypted or sent; and the vault's own refusals of a
 * card (`card_number_not_allowed` for a field, `card_not_accepted` for the
 * card) are shown inline in the shopper's words.
 */
import type { Page, Request } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { expect, isFieldsDocument, test } from './fixtures.ts';

const ALL_FIELDS = { mode: 'payment', saveCard: 'optional', fields: { name: true, postalCode: true } } as const;

/** Every POST /v1/tokens the fields make. */
function tokenRequests(page: Page): Request[] {
  const sent: Request[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/v1/tokens') sent.push(request);
  });
  return sent;
}

/** Makes the vault answer the fields' next POST /v1/tokens with `error`, as the vault would for such a card. */
async function vaultAnswers(page: Page, status: number, error: Record<string, string>): Promise<void> {
  await page.route(
    (url) => url.pathname === '/v1/tokens',
    (route) =>
      route.request().method() === 'POST' && isFieldsDocument(route.request().frame().url())
        ? route.fulfill({ status, contentType: 'application/json', body: JSON.stringify({ error }) })
        : route.fallback(),
  );
}

test('a card number typed into the name field is shown as an error there when the shopper leaves it, and tokenize() sends nothing', async ({ openShop, page }) => {
  const sent = tokenRequests(page);
  const shop = await openShop();
  const fields = await shop.mountReady('card', ALL_FIELDS);
  const message = 'Enter your card number in the card number field, not here.';

  await fields.locator('#name').pressSequentially('4242 4242 4242 4242');
  await expect(fields.locator('#name-error')).toBeHidden();
  await fields.locator('#number').focus();
  await expect(fields.locator('#name-error')).toHaveText(message);
  await expect(fields.locator('#name')).toHaveAttribute('aria-invalid', 'true');
  await expect(fields.locator('#name')).toHaveAttribute('aria-describedby', 'name-error');
  await expect(fields.getByRole('status')).toHaveText(message);

  await shop.typeCard('card', CARDS.visa);
  await fields.locator('#postal_code').pressSequentially('SW1A 1AA');
  const outcome = await shop.tokenize('card');
  expect(outcome).toMatchObject({ ok: false, error: { code: 'validation_error', type: 'validation_error', param: 'name', message } });
  await expect(fields.locator('#name')).toBeFocused();
  expect(sent, 'nothing was encrypted and posted').toEqual([]);
  // The merchant page hears which field and why, never the digits (the fixture's message audit checks every message too).
  const change = (await shop.events('card', 'change')).at(-1)?.detail;
  expect(change.error).toMatchObject({ code: 'card_number_not_allowed', param: 'name' });
  expect(JSON.stringify(await shop.events('card'))).not.toMatch(/4242/);

  // Fixing the name clears the error, and the card tokenizes.
  await fields.locator('#name').fill('Ada Lovelace');
  await expect(fields.locator('#name-error')).toBeHidden();
  expect(await shop.tokenize('card')).toMatchObject({ ok: true, value: { card: { last4: '4242' } } });
});

test('a dashed card number in the postal code is refused at that field in the shopper’s language, on submit', async ({ openShop, page }) => {
  const sent = tokenRequests(page);
  const shop = await openShop();
  const fields = await shop.mountReady('card', { ...ALL_FIELDS, locale: 'fr' });
  await fields.locator('#name').pressSequentially('Ada Lovelace');
  await shop.typeCard('card', CARDS.visa);
  await fields.locator('#postal_code').pressSequentially('4242-4242-4242-4242');

  const outcome = await shop.tokenize('card');
  const message = 'Saisissez le numéro de carte dans le champ prévu, pas ici.';
  expect(outcome).toMatchObject({ ok: false, error: { code: 'validation_error', param: 'postal_code', message } });
  await expect(fields.locator('#postal_code-error')).toHaveText(message);
  await expect(fields.locator('#postal_code')).toHaveAttribute('aria-invalid', 'true');
  await expect(fields.locator('#postal_code')).toHaveAttribute('aria-describedby', 'postal_code-error');
  expect(sent).toEqual([]);
});

test('the vault’s 422 card_number_not_allowed for the name is shown at the name field', async ({ openShop, page }) => {
  await vaultAnswers(page, 422, {
    type: 'card',
    code: 'card_number_not_allowed',
    message: 'A card number is not allowed in this field.',
    param: 'name',
  });
  const shop = await openShop();
  const fields = await shop.mountReady('card', ALL_FIELDS);
  await fields.locator('#name').pressSequentially('Ada Lovelace');
  await shop.typeCard('card', CARDS.visa);
  await fields.locator('#postal_code').pressSequentially('SW1A 1AA');

  const outcome = await shop.tokenize('card');
  expect(outcome).toMatchObject({ ok: false, error: { code: 'card_number_not_allowed', param: 'name' } });
  const message = 'Enter your card number in the card number field, not here.';
  await expect(fields.locator('#name-error')).toHaveText(message);
  await expect(fields.locator('#name')).toHaveAttribute('aria-invalid', 'true');
  await expect(fields.locator('#name')).toHaveAttribute('aria-describedby', 'name-error');
  await expect(fields.getByRole('status')).toHaveText(message);
  await expect(fields.locator('#number')).toHaveAttribute('aria-invalid', 'false');
});

test('the vault’s 422 card_not_accepted is shown at the card number as a plain "try another card"', async ({ openShop, page }) => {
  await vaultAnswers(page, 422, { type: 'card', code: 'card_not_accepted', message: 'This card cannot be used here.' });
  const shop = await openShop();
  const fields = await shop.mountReady('card', { mode: 'signup' });
  await shop.typeCard('card', CARDS.visa);

  const outcome = await shop.tokenize('card');
  expect(outcome).toMatchObject({ ok: false, error: { code: 'card_not_accepted' } });
  const message = 'This card cannot be used here. Try another card.';
  await expect(fields.locator('#number-error')).toHaveText(message);
  await expect(fields.locator('#number')).toHaveAttribute('aria-invalid', 'true');
  await expect(fields.locator('#number')).toHaveAttribute('aria-describedby', 'number-error');
  await expect(fields.getByRole('status')).toHaveText(message);
  // Typing another card clears it.
  await fields.locator('#number').fill('');
  await expect(fields.locator('#number-error')).toBeHidden();
});
