/**
 * The demo shop's checkout, end to end: a shopper in real Chromium on the
 * shop's origin, the card fields from the vault's origin, the shop's backend
 * charging through the vault. Each test checks what the shopper sees and
 * what the vault then holds.
 */
import { CARDS, SANDBOX_CARDS } from '../support/cards.ts';
import { api } from '../support/api.ts';
import { cardFields, confirmedOrderId, expect, fieldsReady, fillCart, signUp, test, typeCard, userId } from './support/demo.ts';

/** Tile nippers (18.50) + cobalt glass (24.00). */
const CART_TOTAL = 4250;

test('a guest buys without saving the card: paid and captured, confirmed with brand and last 4, and the token is spent', async ({ page, demo }) => {
  await fillCart(page, demo.shop.url);
  await page.getByRole('link', { name: /^Cart/ }).click();
  await expect(page.getByRole('heading', { name: 'Your cart', level: 1 })).toBeVisible();
  await page.getByRole('link', { name: 'Go to checkout' }).click();
  await expect(page.getByRole('button', { name: 'Pay €42.50' })).toBeVisible();

  const fields = await fieldsReady(page);
  // A guest has no account to save a card to.
  await expect(fields.getByRole('checkbox')).toHaveCount(0);
  await expect(page.getByText('to save your card for next time')).toBeVisible();
  await typeCard(page, CARDS.visa);
  await page.getByRole('button', { name: 'Pay €42.50' }).click();

  const orderId = await confirmedOrderId(page);
  await expect(page.locator('#order-card')).toHaveText('Visa ending in 4242');
  await expect(page.locator('#order-status')).toHaveText('Paid');
  await expect(page.locator('#order-saved')).toHaveText('No');
  await expect(page.locator('#cart-count')).toHaveText('0');

  const [payment] = (await demo.vaultGet(`/v1/payments?reference=${orderId}`)).data;
  expect(payment).toMatchObject({ status: 'captured', amount: CART_TOTAL, amount_captured: CART_TOTAL, currency: 'EUR', card: { brand: 'visa', last4: '4242' } });
  const token = await demo.vaultGet(`/v1/tokens/${payment.token}`);
  expect(token).toMatchObject({ reusable: false, customer: null, used_at: expect.any(String) });
  // Single-use: the shop could not charge it again.
  const again = await api(demo.vault.url, 'POST', '/v1/payments', { key: demo.merchant.secretKey, json: { token: payment.token, amount: 100, currency: 'EUR' } });
  expect(again.body.error.code).toBe('token_used');
});

test('a decline is explained in plain words, and the shopper pays with another card in the same fields without reloading', async ({ page, demo }) => {
  await fillCart(page, demo.shop.url);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
  await typeCard(page, { number: SANDBOX_CARDS.insufficient_funds, cvc: CARDS.visa.cvc });
  await page.getByRole('button', { name: /^Pay/ }).click();
  await expect(page.getByRole('alert')).toHaveText('Your card was declined for insufficient funds. Try another card.');
  await expect(page.getByRole('heading', { name: 'Thank you, your order is placed' })).toBeHidden();

  // The same fields, still mounted, with the declined card in them: the shopper types another number.
  await expect(cardFields(page).locator('#number')).toHaveValue('4000 0000 0000 9995');
  await cardFields(page).locator('#number').fill('');
  await cardFields(page).locator('#number').pressSequentially(CARDS.mastercard.number);
  await cardFields(page).locator('#cvc').fill('');
  await cardFields(page).locator('#cvc').pressSequentially(CARDS.mastercard.cvc);
  await page.getByRole('button', { name: /^Pay/ }).click();

  const orderId = await confirmedOrderId(page);
  await expect(page.locator('#order-card')).toHaveText('Mastercard ending in 4444');
  expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  const payments = (await demo.vaultGet(`/v1/payments?reference=${orderId}`)).data;
  expect(payments.map((p: { status: string; decline_code: string | null; amount: number }) => [p.status, p.decline_code, p.amount])).toEqual([
    ['captured', null, CART_TOTAL],
    ['declined', 'insufficient_funds', CART_TOTAL],
  ]);
  expect(payments[0].token).not.toBe(payments[1].token);
});

test('a signed-in shopper saves the card at checkout; next time it is on the account page and pays again with only its CVC', async ({ page, demo }) => {
  const { email } = await signUp(page, demo.shop.url);
  const customer = await userId(demo, email);
  await fillCart(page, demo.shop.url, ['Gold leaf tesserae (100 pcs)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await typeCard(page, CARDS.visa);
  await cardFields(page).getByRole('checkbox', { name: 'Save this card for next time' }).check();
  await page.getByRole('button', { name: 'Pay €59.00' }).click();
  const firstOrder = await confirmedOrderId(page);
  await expect(page.locator('#order-saved')).toHaveText('Yes, it is on your account for next time');

  const [first] = (await demo.vaultGet(`/v1/payments?reference=${firstOrder}`)).data;
  expect(first).toMatchObject({ status: 'captured', amount: 5900 });
  expect(await demo.vaultGet(`/v1/tokens/${first.token}`)).toMatchObject({ reusable: true, customer, card: { brand: 'visa', last4: '4242' } });
  expect((await demo.vaultGet(`/v1/tokens?customer=${customer}`)).data.map((t: { token: string }) => t.token)).toEqual([first.token]);

  await page.goto(`${demo.shop.url}/account.html`);
  await expect(page.locator('#card-list')).toContainText('Visa •••• 4242');
  await expect(page.locator('#card-list')).toContainText('Default');

  // Next time: the saved card is preselected and the fields ask for its CVC only.
  await fillCart(page, demo.shop.url, ['Fibreglass mesh (1 m²)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await expect(page.getByRole('radio', { name: /^Visa ending in 4242, expires 12\// })).toBeChecked();
  const fields = await fieldsReady(page);
  await expect(fields.getByText('•••• 4242')).toBeVisible();
  await expect(fields.locator('#number')).toHaveCount(0);
  await fields.locator('#cvc').pressSequentially(CARDS.visa.cvc);
  await page.getByRole('button', { name: 'Pay €9.90' }).click();
  const secondOrder = await confirmedOrderId(page);
  await expect(page.locator('#order-card')).toHaveText('Visa ending in 4242');

  const [second] = (await demo.vaultGet(`/v1/payments?reference=${secondOrder}`)).data;
  expect(second).toMatchObject({ status: 'captured', amount: 990, token: first.token });
  // Still one saved card, still usable.
  expect((await demo.vaultGet(`/v1/tokens/${first.token}`)).reusable).toBe(true);
});
