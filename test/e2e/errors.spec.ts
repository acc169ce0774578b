/**
 * When tokenizing fails: a field the shopper got wrong (checked in the
 * fields, shown there, named to the merchant), and a vault that cannot be
 * reached (a network_error in time, and fields that still work after).
 */
import type { Request } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { TOKENIZE_TIMEOUT_MS, VAULT_TIMEOUT_MS } from '../../widget/shared/constants.ts';
import { expect, isFieldsDocument, readToken, test } from './fixtures.ts';
import { futureExpiry, type ShopPage } from './support/harness.ts';

const INVALID = [
  { what: 'a number that fails the Luhn check', field: 'number', card: { number: '4242424242424241', cvc: CARDS.visa.cvc }, expiry: futureExpiry(), message: 'Your card number is invalid.' },
  { what: 'an expiry in the past', field: 'expiry', card: { number: CARDS.visa.number, cvc: CARDS.visa.cvc }, expiry: '0120', message: "Your card's expiry date is in the past." },
  { what: 'a CVC that is too short', field: 'cvc', card: { number: CARDS.visa.number, cvc: '51' }, expiry: futureExpiry(), message: "Your card's security code is incomplete." },
] as const;

const FIELDS = ['number', 'expiry', 'cvc'] as const;

for (const { what, field, card, expiry, message } of INVALID) {
  test(`${what} makes tokenize() reject with a validation_error naming "${field}", shown at the field`, async ({ openShop, page }) => {
    const tokenRequests: Request[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/v1/tokens') tokenRequests.push(request);
    });
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment' });
    await shop.typeCard('card', card, expiry);

    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: false, error: { name: 'TesseraError', code: 'validation_error', type: 'validation_error', param: field, message, isError: true } });

    const input = fields.locator(`#${field}`);
    await expect(fields.locator(`#${field}-error`)).toBeVisible();
    await expect(fields.locator(`#${field}-error`)).toHaveText(message);
    await expect(input).toHaveAttribute('aria-invalid', 'true');
    await expect(input).toHaveAttribute('aria-describedby', `${field}-error`);
    await expect(input).toBeFocused();
    await expect(fields.getByRole('status')).toHaveText(message);
    for (const other of FIELDS.filter((name) => name !== field)) {
      await expect(fields.locator(`#${other}`)).toHaveAttribute('aria-invalid', 'false');
    }
    // Checked in the fields: the vault was never asked.
    expect(tokenRequests).toEqual([]);
  });
}

test('a field shows its error when the shopper leaves it, not while typing', async ({ openShop }) => {
  const shop = await openShop();
  const fields = await shop.mountReady('card', { mode: 'payment' });
  const number = fields.locator('#number');
  await number.pressSequentially('4242424242424241');
  await expect(number).toBeFocused();
  await expect(fields.locator('#number-error')).toBeHidden();
  await expect(number).toHaveAttribute('aria-invalid', 'false');

  await fields.locator('#expiry').focus();
  await expect(fields.locator('#number-error')).toHaveText('Your card number is invalid.');
  await expect(number).toHaveAttribute('aria-invalid', 'true');
  // Editing the field clears its error until the shopper leaves it again.
  await number.press('End');
  await number.press('Backspace');
  await expect(number).toHaveValue('4242 4242 4242 424');
  await expect(fields.locator('#number-error')).toBeHidden();
});

const NETWORK_MESSAGE = 'We could not reach the payment service. Please try again.';

async function cardThroughDoor(openShop: (options: { vaultUrl: string }) => Promise<ShopPage>, doorUrl: string): Promise<ShopPage> {
  const shop = await openShop({ vaultUrl: doorUrl });
  await shop.mountReady('card', { mode: 'payment', saveCard: 'optional' });
  await shop.typeCard('card', CARDS.visa);
  return shop;
}

test.describe('a vault out of reach', () => {
  test('a vault that refuses connections makes tokenize() reject with network_error at once, and the same fields tokenize once it is back', async ({
    openShop,
    env,
    vaultDoor,
  }) => {
    const shop = await cardThroughDoor(openShop, vaultDoor.url);
    const fields = shop.fields('card');
    await vaultDoor.close();

    const failed = await shop.tokenize('card');
    expect(failed).toMatchObject({ ok: false, error: { name: 'TesseraError', code: 'network_error', type: 'api_connection' } });
    // A refused connection is known at once: no waiting for the fields' own time-out.
    expect(failed.ms).toBeLessThan(VAULT_TIMEOUT_MS);
    await expect(fields.getByRole('paragraph').filter({ hasText: NETWORK_MESSAGE })).toBeVisible();
    await expect(fields.getByRole('status')).toHaveText(NETWORK_MESSAGE);
    // Still usable: the shopper can change the card and the page can try again.
    await expect(fields.locator('#number')).toBeEditable();
    await fields.getByRole('checkbox', { name: 'Save this card for next time' }).check();

    await vaultDoor.reopen();
    const retried = await shop.tokenize('card');
    expect(retried).toMatchObject({ ok: true, value: { reusable: true, card: { last4: '4242' } } });
    if (retried.ok) expect(await readToken(env, retried.value.token)).toMatchObject({ reusable: true });
    await expect(fields.getByRole('paragraph').filter({ hasText: NETWORK_MESSAGE })).toHaveCount(0);
  });

  test('a vault that takes the request and never answers makes tokenize() reject with network_error within 10 s, and a retry goes through', async ({
    openShop,
    env,
    vaultDoor,
    page,
  }) => {
    const shop = await cardThroughDoor(openShop, vaultDoor.url);
    const sent: Array<{ key: string | null; body: string | null }> = [];
    page.on('request', (request) => {
      if (isFieldsDocument(request.frame().url()) && new URL(request.url()).pathname === '/v1/tokens') {
        sent.push({ key: request.headers()['idempotency-key'] ?? null, body: request.postData() });
      }
    });
    vaultDoor.stall();

    const failed = await shop.tokenize('card');
    expect(failed).toMatchObject({ ok: false, error: { code: 'network_error' } });
    expect(failed.ms).toBeLessThan(TOKENIZE_TIMEOUT_MS);

    await vaultDoor.reopen();
    const retried = await shop.tokenize('card');
    expect(retried).toMatchObject({ ok: true, value: { card: { last4: '4242' } } });
    if (retried.ok) expect(await readToken(env, retried.value.token)).toMatchObject({ reusable: false });
    // The retry re-sent the unanswered request as it was, so the vault cannot make two tokens of it.
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual(sent[0]);
    expect(sent[0]!.key).toMatch(/.+/);
  });
});
