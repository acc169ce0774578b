/**
 * The fields' moto mode: a merchant's agent keys in a card taken by phone,
 * and the token it makes is single-use and good for MOTO payments only.
 */
import { api } from '../support/api.ts';
import { CARDS } from '../support/cards.ts';
import { expect, readToken, test } from './fixtures.ts';
import { futureExpiry } from './support/harness.ts';

test.describe('moto mode', () => {
  test('asks for a card from the customer with no autofill, no save box and an optional CVC, and makes a single-use MOTO token', async ({ openShop, env }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'moto', saveCard: 'optional' });
    await expect(fields.locator('legend')).toHaveText('Card from customer');
    await expect(fields.getByRole('checkbox')).toHaveCount(0);
    for (const input of ['#number', '#expiry', '#cvc']) await expect(fields.locator(input)).toHaveAttribute('autocomplete', 'off');
    await expect(fields.getByLabel('Security code (optional)')).toBeVisible();

    await fields.locator('#number').pressSequentially(CARDS.visa.number);
    await fields.locator('#expiry').pressSequentially(futureExpiry());
    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: true, value: { reusable: false, card: { brand: 'visa', last4: '4242' } } });
    if (!outcome.ok) return;
    expect(await readToken(env, outcome.value.token)).toMatchObject({ reusable: false, moto: true });

    const ecommerce = await api(env.vault.url, 'POST', '/v1/payments', {
      key: env.merchant.secretKey,
      json: { token: outcome.value.token, amount: 2500, currency: 'EUR' },
    });
    expect(ecommerce.status).toBe(422);
    expect(ecommerce.body.error.code).toBe('token_moto_only');
    const moto = await api(env.vault.url, 'POST', '/v1/payments', {
      key: env.merchant.secretKey,
      json: { token: outcome.value.token, amount: 2500, currency: 'EUR', channel: 'moto' },
    });
    expect(moto.status, moto.text).toBe(201);
    expect(moto.body).toMatchObject({ status: 'captured', channel: 'moto' });
  });

  test('still checks a CVC the agent typed against the brand', async ({ openShop }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'moto' });
    await fields.locator('#number').pressSequentially(CARDS.amex.number);
    await fields.locator('#expiry').pressSequentially(futureExpiry());
    await fields.locator('#cvc').pressSequentially('12');
    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: false, error: { code: 'validation_error', param: 'cvc' } });
    await expect(fields.locator('#cvc')).toHaveAttribute('aria-invalid', 'true');
  });
});
