/**
 * A shopper with a keyboard only: Tab reaches every control in order, the
 * card can be typed and Enter submits it through the documented `submit`
 * event (README: Enter tokenizes in the fields; `result` id 0).
 */
import { CARDS } from '../support/cards.ts';
import { expect, readToken, test } from './fixtures.ts';
import { futureExpiry } from './support/harness.ts';

const ALL_FIELDS = { mode: 'payment', saveCard: 'optional', fields: { name: true, postalCode: true } } as const;

test('Tab moves from the page through every field of the card, in order, and back out to the page', async ({ openShop, page }) => {
  const shop = await openShop();
  const fields = await shop.mountReady('card', ALL_FIELDS);
  await page.locator('#before').focus();

  // The name on the card comes first when it is asked for (as the fields lay it out), the save box last.
  const order = [fields.locator('#name'), fields.locator('#number'), fields.locator('#expiry'), fields.locator('#cvc'), fields.locator('#postal_code'), fields.getByRole('checkbox')];
  for (const control of order) {
    await page.keyboard.press('Tab');
    await expect(control).toBeFocused();
  }
  await page.keyboard.press('Tab');
  await expect(page.locator('#pay')).toBeFocused();
  // And back in from the other side.
  await page.keyboard.press('Shift+Tab');
  await expect(order.at(-1)!).toBeFocused();
});

test('a shopper fills in the card with the keyboard alone and Enter submits it, handing the merchant a token through the submit event', async ({
  openShop,
  env,
  page,
}) => {
  const shop = await openShop();
  const fields = await shop.mountReady('card', ALL_FIELDS);
  await page.locator('#before').focus();

  await page.keyboard.press('Tab');
  await page.keyboard.type('Ada Lovelace');
  await page.keyboard.press('Tab');
  await page.keyboard.type(CARDS.visa.number);
  // A complete field hands focus on by itself.
  await expect(fields.locator('#expiry')).toBeFocused();
  await page.keyboard.type(futureExpiry());
  await expect(fields.locator('#cvc')).toBeFocused();
  await page.keyboard.type(CARDS.visa.cvc);
  await expect(fields.locator('#postal_code')).toBeFocused();
  await page.keyboard.type('SW1A 1AA');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Space');
  await expect(fields.getByRole('checkbox')).toBeChecked();
  expect(await shop.events('card', 'submit')).toEqual([]);

  await page.keyboard.press('Enter');
  await expect.poll(() => shop.events('card', 'submit'), { timeout: 10_000 }).toHaveLength(1);
  const [submit] = await shop.events('card', 'submit');
  expect(submit!.detail).toMatchObject({ ok: true, value: { reusable: true, card: { brand: 'visa', last4: '4242' } } });
  expect(await readToken(env, submit!.detail.value.token)).toMatchObject({
    reusable: true,
    card: { brand: 'visa', last4: '4242', name: 'Ada Lovelace' },
  });
});

test('Enter with a field left wrong submits nothing to the vault and reports the field through the submit event', async ({ openShop, page }) => {
  const shop = await openShop();
  const fields = await shop.mountReady('card', { mode: 'payment' });
  await fields.locator('#number').pressSequentially(CARDS.visa.number);
  await page.keyboard.type('01');
  await page.keyboard.press('Enter');

  await expect.poll(() => shop.events('card', 'submit')).toHaveLength(1);
  const [submit] = await shop.events('card', 'submit');
  expect(submit!.detail).toMatchObject({ ok: false, error: { name: 'TesseraError', code: 'validation_error', param: 'expiry', isError: true } });
  await expect(fields.locator('#expiry')).toBeFocused();
  await expect(fields.locator('#expiry')).toHaveAttribute('aria-invalid', 'true');
});
