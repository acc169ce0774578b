/**
 * The demo shop's defences as a shopper meets them in real Chromium: a
 * card tester's run of declines at checkout (the reason once, then one
 * generic sentence, then a refusal in plain words) and a locked sign-in.
 */
import { CARDS, SANDBOX_CARDS } from '../support/cards.ts';
import { cardFields, expect, fillCart, signUp, test, typeCard } from './support/demo.ts';

const GENERIC = 'Your card was declined. Try another card.';

test('a second decline shows one generic sentence instead of the reason, and a fourth card is refused in plain words without a payment', async ({ page, demo }) => {
  await fillCart(page, demo.shop.url);
  await page.goto(`${demo.shop.url}/checkout.html`);
  const alert = page.getByRole('alert');
  const pay = page.getByRole('button', { name: /^Pay/ });
  /** The declined number is still in the fields: the shopper types the next one over it. */
  const replaceNumber = async (number: string) => {
    await cardFields(page).locator('#number').fill('');
    await cardFields(page).locator('#number').pressSequentially(number);
  };

  await typeCard(page, { number: SANDBOX_CARDS.insufficient_funds, cvc: CARDS.visa.cvc });
  await pay.click();
  await expect(alert).toHaveText('Your card was declined for insufficient funds. Try another card.');

  await replaceNumber(SANDBOX_CARDS.expired_card);
  await pay.click();
  // The same words whatever the acquirer said: an expired card no longer says so.
  await expect(alert).toHaveText(GENERIC);

  // The alert already reads GENERIC: wait for the shop's answer itself before looking again.
  await replaceNumber(SANDBOX_CARDS.incorrect_cvc);
  const third = page.waitForResponse((response) => response.url().endsWith('/api/checkout'));
  await pay.click();
  expect((await third).status()).toBe(402);
  await expect(alert).toHaveText(GENERIC);

  await replaceNumber(CARDS.visa.number);
  await pay.click();
  await expect(alert).toHaveText(/^Too many card attempts\. For your security, please wait (1 hour|\d+ minutes) before trying again\.$/);
  await expect(page.getByRole('heading', { name: 'Thank you, your order is placed' })).toBeHidden();

  // Trying again is refused the same way, and the cart is still there for later.
  const again = page.waitForResponse((response) => response.url().endsWith('/api/checkout'));
  await pay.click();
  expect((await again).status()).toBe(429);
  await expect(alert).toHaveText(/^Too many card attempts\./);
  await expect(page.locator('#cart-count')).not.toHaveText('0');

  // Three payments reached the vault for this order, all declined; the good card was never charged.
  const { rows } = await demo.shop.db.query<{ order_id: string }>(
    `select order_id from payment_attempts group by order_id
      having array_agg(decline_code order by attempt) = array['insufficient_funds', 'expired_card', 'incorrect_cvc']`,
  );
  expect(rows).toHaveLength(1);
  const payments = (await demo.vaultGet(`/v1/payments?reference=${rows[0]!.order_id}`)).data;
  expect(payments.map((payment: { status: string }) => payment.status)).toEqual(['declined', 'declined', 'declined']);
});

test('after five wrong passwords the sign-in page refuses even the right one, and says how long to wait', async ({ page, demo }) => {
  const { email, password } = await signUp(page, demo.shop.url);
  await page.goto(`${demo.shop.url}/login.html`);
  const signIn = async (withPassword: string) => {
    await page.getByLabel('E-mail address').fill(email);
    await page.getByLabel('Password').fill(withPassword);
    const answer = page.waitForResponse((response) => response.url().endsWith('/api/login'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    return (await answer).status();
  };
  for (let i = 0; i < 5; i++) {
    expect(await signIn('not-my-password')).toBe(401);
    await expect(page.getByRole('alert')).toHaveText('The e-mail address or password is not right.');
  }
  expect(await signIn(password)).toBe(429);
  await expect(page.getByRole('alert')).toHaveText(/^Too many sign-in attempts\. For your security, please wait \d+ seconds before trying again\.$/);
  await expect(page).toHaveURL(/\/login\.html/);
});
