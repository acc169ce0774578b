/**
 * `POST /v1/tokens/{token}/verify`: account verification of a token the card
 * fields made (signup mode), asked for by the merchant's server with its
 * secret key, since the publishable key must never reach the acquirer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, type TestMerchant } from '../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('account verification of an existing token on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let otherShop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'verify' });
    shop = await createMerchant(vault);
    otherShop = await createMerchant(vault, { name: 'Other Shop' });
  });
  afterAll(() => vault?.close());

  /** A token as the card fields make it in signup mode (reusable, with its CVC held until the first authorization). */
  async function fieldsToken(number: string = CARDS.visa.number, reusable = true): Promise<string> {
    const session = await openSession(vault.url, shop);
    const response = await api(vault.url, 'POST', '/v1/tokens', {
      json: { key: shop.publishableKey, session, card: await encryptCard(vault.url, cardPlaintext({ number, cvc: CARDS.visa.cvc })), reusable },
    });
    expect(response.status, response.text).toBe(201);
    return response.body.token;
  }

  const verify = (token: string, options: { key?: string; idempotencyKey?: string } = {}) =>
    api(vault.url, 'POST', `/v1/tokens/${token}/verify`, {
      key: options.key ?? shop.secretKey,
      json: {},
      headers: options.idempotencyKey === undefined ? {} : { 'Idempotency-Key': options.idempotencyKey },
    });
  const heldCvc = async (token: string) =>
    (await vault.vault.db.query<{ held: boolean }>('select cvc_sealed is not null as held from tokens where token = $1', [token])).rows[0]!.held;

  it('verifies the card, answers the token object with `verification`, erases the CVC and creates no payment', async () => {
    const token = await fieldsToken();
    expect(await heldCvc(token)).toBe(true);
    const response = await verify(token);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ token, reusable: true, card: { brand: 'visa', last4: '4242' }, verification: { status: 'succeeded', decline_code: null } });
    expect(await heldCvc(token)).toBe(false);
    const payments = await api(vault.url, 'GET', `/v1/payments?token=${token}`, { key: shop.secretKey });
    expect(payments.body.data).toEqual([]);
    const events = await api(vault.url, 'GET', `/v1/events?token=${token}`, { key: shop.secretKey });
    expect(events.body.data.map((event: { action: string; outcome: string }) => `${event.action}:${event.outcome}`)).toEqual([
      'token.verified:succeeded',
      'token.created:succeeded',
    ]);
  });

  it('reports a declined verification with its decline code and keeps the token, so the merchant decides', async () => {
    const token = await fieldsToken(SANDBOX_CARDS.insufficient_funds);
    const response = await verify(token);
    expect(response.status).toBe(200);
    expect(response.body.verification).toEqual({ status: 'failed', decline_code: 'insufficient_funds' });
    expect((await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: shop.secretKey })).status).toBe(200);
  });

  it('answers 502 acquirer_error when the acquirer’s answer is lost, and a retry with the same Idempotency-Key gets the verification', async () => {
    const token = await fieldsToken(SANDBOX_CARDS.acquirer_error);
    const idempotencyKey = `verify-${token}`;
    const lost = await verify(token, { idempotencyKey });
    expect(lost.status).toBe(502);
    expect(lost.body.error.code).toBe('acquirer_error');
    const retried = await verify(token, { idempotencyKey });
    expect(retried.status).toBe(200);
    expect(retried.body.verification).toEqual({ status: 'succeeded', decline_code: null });
    const replayed = await verify(token, { idempotencyKey });
    expect(replayed.text).toBe(retried.text);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
  });

  it('answers 409 token_used for a spent single-use token and 404 for a deleted or another merchant’s token', async () => {
    const spent = await fieldsToken(CARDS.visa.number, false);
    const paid = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: spent, amount: 500, currency: 'EUR' } });
    expect(paid.status).toBe(201);
    expect((await verify(spent)).body.error.code).toBe('token_used');

    const deleted = await fieldsToken();
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${deleted}`, { key: shop.secretKey })).status).toBe(200);
    expect((await verify(deleted)).status).toBe(404);

    const response = await verify(await fieldsToken(), { key: otherShop.secretKey });
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('token_not_found');
  });

  it('spends a single-use token: one token cannot test a card twice, nor be charged after its verification', async () => {
    const token = await fieldsToken(CARDS.visa.number, false);
    const first = await verify(token);
    expect(first.status).toBe(200);
    expect(first.body.used_at).not.toBeNull();
    expect((await verify(token)).body.error.code).toBe('token_used');
    const paid = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token, amount: 500, currency: 'EUR' } });
    expect(paid.body.error.code).toBe('token_used');
  });

  it('needs the secret key: the publishable key is refused with 403 and no key with 401', async () => {
    const token = await fieldsToken();
    expect((await verify(token, { key: shop.publishableKey })).body.error.code).toBe('secret_key_required');
    const anonymous = await api(vault.url, 'POST', `/v1/tokens/${token}/verify`, { json: {} });
    expect(anonymous.status).toBe(401);
    expect(await heldCvc(token)).toBe(true);
  });

  it('refuses parameters (400) without verifying', async () => {
    const token = await fieldsToken();
    const response = await api(vault.url, 'POST', `/v1/tokens/${token}/verify`, { key: shop.secretKey, json: { amount: 1 } });
    expect(response.status).toBe(400);
    expect(await heldCvc(token)).toBe(true);
  });
});
