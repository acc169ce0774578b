import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('MOTO on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'moto' });
    shop = await createMerchant(vault, { uniqueTokens: true });
  });
  afterAll(() => vault?.close());

  /** What the card fields in moto mode send: the agent typed number and expiry, and perhaps no CVC. */
  async function motoToken(card: Record<string, unknown> = withoutCvc(), extra: Record<string, unknown> = {}) {
    const session = await openSession(vault.url, shop);
    return api(vault.url, 'POST', '/v1/tokens', {
      json: { key: shop.publishableKey, session, card: await encryptCard(vault.url, card), reusable: false, moto: true, ...extra },
    });
  }
  function withoutCvc(card: { number: string; cvc: string } = CARDS.visa) {
    const plaintext = cardPlaintext(card);
    delete plaintext.cvc;
    delete plaintext.name;
    return plaintext;
  }
  const pay = (body: Record<string, unknown>, options: { key?: string; authorization?: string } = {}) =>
    api(vault.url, 'POST', '/v1/payments', {
      ...(options.key === undefined ? {} : { key: options.key }),
      ...(options.authorization === undefined ? {} : { headers: { authorization: options.authorization } }),
      json: { amount: 4500, currency: 'EUR', ...body },
    });
  const paymentCount = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from payments')).rows[0]!.n;

  it('makes a single-use token from a card keyed in without a CVC, answered to the page like any token', async () => {
    const created = await motoToken();
    expect(created.status, created.text).toBe(201);
    expect(created.body).toEqual({ token: expect.stringMatching(/^tok_/), reusable: false, card: expect.objectContaining({ brand: 'visa', last4: '4242' }) });
    const read = await api(vault.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey });
    expect(read.body).toMatchObject({ reusable: false, moto: true, stored_credential: null });
  });

  it('charges a MOTO token with a channel "moto" payment made with the secret key, with no CVC and no SCA', async () => {
    const { body } = await motoToken();
    const payment = await pay({ token: body.token, channel: 'moto' }, { key: shop.secretKey });
    expect(payment.status, payment.text).toBe(201);
    expect(payment.body).toMatchObject({ status: 'captured', channel: 'moto', initiator: 'customer' });
    const { rows } = await vault.vault.db.query<{ channel: string }>('select channel from sandbox_acquirer_authorizations where reference = $1', [payment.body.id]);
    expect(rows[0]!.channel).toBe('moto');
  });

  it('accepts a CVC in moto mode when the agent has one', async () => {
    const { body, status } = await motoToken(cardPlaintext(CARDS.amex));
    expect(status).toBe(201);
    expect((await pay({ token: body.token, channel: 'moto' }, { key: shop.secretKey })).status).toBe(201);
  });

  it('refuses an ecommerce payment on a MOTO token with 422 token_moto_only, leaving the token unspent', async () => {
    const { body } = await motoToken();
    const before = await paymentCount();
    const ecommerce = await pay({ token: body.token }, { key: shop.secretKey });
    expect(ecommerce.status).toBe(422);
    expect(ecommerce.body.error).toMatchObject({ code: 'token_moto_only', param: 'token' });
    expect(await paymentCount()).toBe(before);
    expect((await pay({ token: body.token, channel: 'moto' }, { key: shop.secretKey })).status).toBe(201);
  });

  it('spends a MOTO token with its first payment: a second answers 409 token_used', async () => {
    const { body } = await motoToken();
    expect((await pay({ token: body.token, channel: 'moto' }, { key: shop.secretKey })).status).toBe(201);
    const again = await pay({ token: body.token, channel: 'moto' }, { key: shop.secretKey });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('token_used');
  });

  it('refuses a MOTO payment made with the publishable key with 403 secret_key_required, storing nothing', async () => {
    const { body } = await motoToken();
    const before = await paymentCount();
    const refused = await pay({ token: body.token, channel: 'moto' }, { key: shop.publishableKey });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ type: 'authentication', code: 'secret_key_required' });
    // The card fields' way of presenting a key (in the body) is no key at all to the payments API.
    const inBody = await api(vault.url, 'POST', '/v1/payments', { json: { key: shop.publishableKey, token: body.token, amount: 4500, currency: 'EUR', channel: 'moto' } });
    expect(inBody.status).toBe(401);
    expect(await paymentCount()).toBe(before);
    expect((await pay({ token: body.token, channel: 'moto' }, { key: shop.secretKey })).status).toBe(201);
  });

  it('refuses a saved (reusable) MOTO token with 400, storing nothing', async () => {
    const tokens = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from tokens')).rows[0]!.n;
    const before = await tokens();
    const refused = await motoToken(withoutCvc(), { reusable: true });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'parameter_invalid', param: 'reusable' });
    expect(await tokens()).toBe(before);
  });

  it('makes a new MOTO token for a card that already has a token, even with unique tokens on', async () => {
    const saved = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.mastercard)) } });
    expect(saved.status).toBe(201);
    const moto = await motoToken(withoutCvc(CARDS.mastercard));
    expect(moto.status).toBe(201);
    expect(moto.body.token).not.toBe(saved.body.token);
    const read = await api(vault.url, 'GET', `/v1/tokens/${saved.body.token}`, { key: shop.secretKey });
    expect(read.body).toMatchObject({ reusable: true, moto: false });
  });

  it('takes a MOTO payment on a card the merchant server saved, like a phone order from a known customer', async () => {
    const saved = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.amex)) } });
    const payment = await pay({ token: saved.body.token, channel: 'moto' }, { key: shop.secretKey });
    expect(payment.status, payment.text).toBe(201);
    expect(payment.body.channel).toBe('moto');
  });
});
