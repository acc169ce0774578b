/**
 * The demo shop's accounts: sign-up with a card and no purchase (the fields
 * in signup mode, then an account verification at the vault), and the saved
 * cards on the account page (delete, default).
 */
import { CARDS, SANDBOX_CARDS } from '../support/cards.ts';
import { api } from '../support/api.ts';
import { expect, fieldsReady, fillCart, signUp, test, typeCard, userId } from './support/demo.ts';

test('sign up and add a card with no purchase: verified at the vault, shown on the account page, and no payment exists', async ({ page, demo }) => {
  const { email } = await signUp(page, demo.shop.url);
  const customer = await userId(demo, email);
  const fields = await fieldsReady(page);
  await expect(fields.locator('legend')).toHaveText('Save card');
  await expect(fields.getByRole('checkbox')).toHaveCount(0);
  await typeCard(page, CARDS.amex);
  await page.getByRole('button', { name: 'Save card' }).click();

  await expect(page).toHaveURL(/\/account\.html/);
  await expect(page.getByRole('heading', { name: 'Your account', level: 1 })).toBeVisible();
  const card = page.locator('#card-list li').filter({ hasText: 'American Express •••• 0005' });
  await expect(card).toContainText(`Expires 12/${String((new Date().getFullYear() + 1) % 100).padStart(2, '0')}`);
  await expect(card.locator('.brand-icon')).toHaveText('AMEX');
  await expect(card).toContainText('Default');

  const tokens = (await demo.vaultGet(`/v1/tokens?customer=${customer}`)).data;
  expect(tokens).toMatchObject([{ reusable: true, customer, used_at: null, card: { brand: 'american-express', last4: '0005' } }]);
  expect((await demo.vaultGet(`/v1/payments?token=${tokens[0].token}`)).data).toEqual([]);
  const events = (await demo.vaultGet(`/v1/events?token=${tokens[0].token}`)).data;
  // Created, verified (and read by the shop for its account page): no payment action at all.
  const actions = events.map((event: { action: string; outcome: string }) => `${event.action}:${event.outcome}`);
  expect(actions).toContain('token.created:succeeded');
  expect(actions).toContain('token.verified:succeeded');
  expect(actions.filter((action: string) => !action.startsWith('token.read:'))).toEqual(['token.verified:succeeded', 'token.created:succeeded']);
});

test('a card that fails the verification is refused in plain words, and another card is saved in the same fields', async ({ page, demo }) => {
  const { email } = await signUp(page, demo.shop.url);
  await typeCard(page, { number: SANDBOX_CARDS.insufficient_funds, cvc: CARDS.visa.cvc });
  await page.getByRole('button', { name: 'Save card' }).click();
  await expect(page.getByRole('alert')).toHaveText('Your card was declined for insufficient funds. Try another card.');
  await typeCard(page, CARDS.visa);
  await page.getByRole('button', { name: 'Save card' }).click();
  await expect(page.locator('#card-list')).toContainText('Visa •••• 4242');
  // The refused card's token was deleted: only the saved one remains at the vault.
  const tokens = (await demo.vaultGet(`/v1/tokens?customer=${await userId(demo, email)}`)).data;
  expect(tokens.map((token: { card: { last4: string } }) => token.card.last4)).toEqual(['4242']);
});

test('the account page deletes a card and chooses the default, which checkout then preselects', async ({ page, demo }) => {
  const { email } = await signUp(page, demo.shop.url);
  await typeCard(page, CARDS.visa);
  await page.getByRole('button', { name: 'Save card' }).click();
  await expect(page.locator('#card-list')).toContainText('Visa •••• 4242');

  // A second card from the account page itself, then a third.
  for (const card of [CARDS.mastercard, CARDS.amex]) {
    await typeCard(page, card);
    await page.getByRole('button', { name: 'Save card' }).click();
    await expect(page.getByRole('status')).toContainText(`ending in ${card.last4} was saved`);
  }
  const list = page.locator('#card-list li');
  await expect(list).toHaveCount(3);

  await page.getByRole('button', { name: 'Make Mastercard ending in 4444 the default card' }).click();
  await expect(list.filter({ hasText: 'Mastercard' })).toContainText('Default');
  await expect(list.filter({ hasText: 'Visa' })).not.toContainText('Default');

  const customer = await userId(demo, email);
  const amex = (await demo.vaultGet(`/v1/tokens?customer=${customer}`)).data.find((t: { card: { brand: string } }) => t.card.brand === 'american-express');
  await page.getByRole('button', { name: 'Delete American Express ending in 0005' }).click();
  await expect(page.getByRole('status')).toHaveText('American Express ending in 0005 was deleted.');
  await expect(list).toHaveCount(2);
  // Deleted at the vault too: the token answers 404.
  expect((await api(demo.vault.url, 'GET', `/v1/tokens/${amex.token}`, { key: demo.merchant.secretKey })).status).toBe(404);

  await fillCart(page, demo.shop.url, ['Terracotta squares (2 kg)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await expect(page.getByRole('radio', { name: /^Mastercard ending in 4444/ })).toBeChecked();
  await expect(page.getByRole('radio')).toHaveCount(3);
});
