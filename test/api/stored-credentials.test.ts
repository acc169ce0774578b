import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { savedCardWithCredential } from '../support/stored-credentials.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('stored credentials on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'stored-credentials' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const pay = (body: Record<string, unknown>, key = shop.secretKey) =>
    api(vault.url, 'POST', '/v1/payments', { key, json: { amount: 1250, currency: 'EUR', ...body } });

  async function savedToken(options: { number?: string; reusable?: boolean } = {}): Promise<string> {
    const response = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext({ number: options.number ?? CARDS.visa.number, cvc: CARDS.visa.cvc })), reusable: options.reusable ?? true },
    });
    expect(response.status, response.text).toBe(201);
    return response.body.token;
  }

  /** What the sandbox acquirer (the "network") saw of an authorization. */
  const seenByNetwork = async (reference: string) =>
    (
      await vault.vault.db.query<{ initiator: string; previous_network_transaction_id: string | null; network_transaction_id: string | null }>(
        'select initiator, previous_network_transaction_id, network_transaction_id from sandbox_acquirer_authorizations where reference = $1',
        [reference],
      )
    ).rows[0];
  const countRows = async (table: 'payments' | 'sandbox_acquirer_authorizations') =>
    (await vault.vault.db.query<{ n: number }>(`select count(*)::int as n from ${table}`)).rows[0]!.n;

  it("keeps the acquirer's network transaction id on the token after an approved customer-initiated payment with setup_future_usage", async () => {
    const token = await savedToken();
    const first = await pay({ token, setup_future_usage: true, agreement: 'subscription' });
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({ status: 'captured', initiator: 'customer', agreement: 'subscription', channel: 'ecommerce', recurring: true });
    expect(first.body.network_transaction_id).toMatch(/^nti_[0-9A-Za-z]+$/);

    const read = await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: shop.secretKey });
    expect(read.body.stored_credential).toEqual({ network_transaction_id: first.body.network_transaction_id, agreement: 'subscription' });
    const events = await api(vault.url, 'GET', `/v1/events?token=${token}&limit=10`, { key: shop.secretKey });
    const updated = events.body.data.find((event: { type?: string }) => event.type === 'token.updated');
    expect(updated.data.object.stored_credential.network_transaction_id).toBe(first.body.network_transaction_id);
  });

  it('chains merchant-initiated payments to the stored network transaction id, each with an id of its own, and no CVC', async () => {
    const chain = await savedCardWithCredential(vault.url, shop);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const mit = await pay({ token: chain.token, initiator: 'merchant', agreement: 'subscription' });
      expect(mit.status, mit.text).toBe(201);
      expect(mit.body).toMatchObject({ status: 'captured', initiator: 'merchant', agreement: 'subscription', recurring: true });
      const network = await seenByNetwork(mit.body.id);
      expect(network).toMatchObject({ initiator: 'merchant', previous_network_transaction_id: chain.networkTransactionId });
      expect(network!.network_transaction_id).toBe(mit.body.network_transaction_id);
      ids.push(mit.body.network_transaction_id);
    }
    expect(new Set([chain.networkTransactionId, ...ids]).size).toBe(4);
    // The chain stays the one the customer set up.
    const read = await api(vault.url, 'GET', `/v1/tokens/${chain.token}`, { key: shop.secretKey });
    expect(read.body.stored_credential.network_transaction_id).toBe(chain.networkTransactionId);
  });

  it('takes the agreement of a merchant-initiated payment from the chain when the payment names none', async () => {
    const chain = await savedCardWithCredential(vault.url, shop, { agreement: 'installment' });
    const mit = await pay({ token: chain.token, initiator: 'merchant' });
    expect(mit.status, mit.text).toBe(201);
    expect(mit.body.agreement).toBe('installment');
  });

  it('refuses a merchant-initiated payment on a saved card without a stored credential with 422 stored_credential_required, storing nothing', async () => {
    const token = await savedToken();
    // A one-off customer payment does not set up a chain.
    expect((await pay({ token })).status).toBe(201);
    const [payments, authorizations] = [await countRows('payments'), await countRows('sandbox_acquirer_authorizations')];
    const mit = await pay({ token, initiator: 'merchant', agreement: 'unscheduled' });
    expect(mit.status).toBe(422);
    expect(mit.body.error).toMatchObject({ type: 'invalid_request', code: 'stored_credential_required', param: 'token' });
    expect(await countRows('payments')).toBe(payments);
    expect(await countRows('sandbox_acquirer_authorizations')).toBe(authorizations);
  });

  it('refuses a merchant-initiated payment on a single-use token with 422 stored_credential_required', async () => {
    const token = await savedToken({ reusable: false });
    const mit = await pay({ token, initiator: 'merchant' });
    expect(mit.status).toBe(422);
    expect(mit.body.error.code).toBe('stored_credential_required');
  });

  it.each([
    ['a CVC', { cvc: 'eyJ.x.y.z.w' }, 'cvc'],
    ['setup_future_usage', { setup_future_usage: true }, 'setup_future_usage'],
    ['the moto channel', { channel: 'moto' }, 'channel'],
  ])('refuses a merchant-initiated payment with %s with 400 parameter_invalid', async (_what, extra, param) => {
    const chain = await savedCardWithCredential(vault.url, shop);
    const payments = await countRows('payments');
    const mit = await pay({ token: chain.token, initiator: 'merchant', ...extra });
    expect(mit.status).toBe(400);
    expect(mit.body.error).toMatchObject({ code: 'parameter_invalid', param });
    expect(await countRows('payments')).toBe(payments);
  });

  it('refuses setup_future_usage on a single-use token with 422 token_not_reusable', async () => {
    const token = await savedToken({ reusable: false });
    const response = await pay({ token, setup_future_usage: true });
    expect(response.status).toBe(422);
    expect(response.body.error).toMatchObject({ code: 'token_not_reusable', param: 'token' });
  });

  it('refuses unknown initiators, agreements and channels with 400', async () => {
    const token = await savedToken();
    for (const extra of [{ initiator: 'acquirer' }, { agreement: 'forever' }, { channel: 'pos' }, { setup_future_usage: 'yes' }]) {
      const response = await pay({ token, ...extra });
      expect(response.status, JSON.stringify(extra)).toBe(400);
      expect(response.body.error.param).toBe(Object.keys(extra)[0]);
    }
  });

  it('stores no credential when the setting-up payment is declined', async () => {
    const token = await savedToken({ number: SANDBOX_CARDS.insufficient_funds });
    const declined = await pay({ token, setup_future_usage: true });
    expect(declined.status).toBe(402);
    const read = await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: shop.secretKey });
    expect(read.body.stored_credential).toBeNull();
    expect((await pay({ token, initiator: 'merchant' })).body.error.code).toBe('stored_credential_required');
  });

  it('has the sandbox acquirer decline, as a network would, a merchant-initiated authorization without a chain or citing an id it never gave', async () => {
    const card = { number: CARDS.visa.number, exp_month: 12, exp_year: new Date().getUTCFullYear() + 1 };
    const request = { card, amount: 500, currency: 'EUR', initiator: 'merchant' as const, recurring: true };
    const acquirer = vault.vault.deps.acquirer;
    expect(await acquirer.authorize({ ...request, reference: `pay_nochain${storage}${Date.now()}` })).toEqual({
      approved: false,
      declineCode: 'stored_credential_required',
    });
    expect(await acquirer.authorize({ ...request, reference: `pay_forged${storage}${Date.now()}`, previousNetworkTransactionId: 'nti_madeUpByTheMerchant' })).toEqual({
      approved: false,
      declineCode: 'stored_credential_required',
    });
    const chain = await savedCardWithCredential(vault.url, shop);
    expect(await acquirer.authorize({ ...request, reference: `pay_chained${storage}${Date.now()}`, previousNetworkTransactionId: chain.networkTransactionId })).toMatchObject({
      approved: true,
    });
  });

  it('approves a customer payment on the merchant-initiated-declined test card and declines its merchant-initiated ones', async () => {
    const chain = await savedCardWithCredential(vault.url, shop, { number: SANDBOX_CARDS.merchant_initiated_declined });
    const mit = await pay({ token: chain.token, initiator: 'merchant' });
    expect(mit.status).toBe(402);
    expect(mit.body.error).toMatchObject({ code: 'card_declined', decline_code: 'insufficient_funds' });
  });

  it('declines and approves merchant-initiated payments in turn on the alternating test card, starting declined', async () => {
    const chain = await savedCardWithCredential(vault.url, shop, { number: SANDBOX_CARDS.merchant_initiated_alternating });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await pay({ token: chain.token, initiator: 'merchant' })).status);
    expect(statuses).toEqual([402, 201, 402, 201]);
  });
});
