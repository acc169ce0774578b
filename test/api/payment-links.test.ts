/**
 * Payment links (api.md, "Payment links and batch payment operations"):
 * made, read, listed and expired by the merchant's server; paid once per
 * slot on the vault's hosted page with a card-fields token, however many
 * shoppers pay at once; expired by a job at `expires_at`; each change an
 * event.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('payment links on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'payment-links' });
    shop = await createMerchant(vault, { name: 'Atelier Lumière' });
  });
  afterAll(() => vault?.close());

  const createLink = (body: Record<string, unknown> = {}, merchant = shop, headers: Record<string, string> = {}) =>
    api(vault.url, 'POST', '/v1/payment-links', { key: merchant.secretKey, json: { amount: 4200, currency: 'EUR', ...body }, headers });

  /** A single-use token as the hosted page's card fields make it: in a session opened for the vault's own origin. */
  async function pageToken(number: string = CARDS.visa.number, merchant = shop): Promise<string> {
    const session = await api(vault.url, 'POST', '/v1/sessions', { json: { key: merchant.publishableKey, parent_origin: vault.url } });
    expect(session.status, session.text).toBe(201);
    const card = await encryptCard(vault.url, cardPlaintext({ number, cvc: '123' }));
    const token = await api(vault.url, 'POST', '/v1/tokens', { json: { key: merchant.publishableKey, session: session.body.session, card, reusable: false } });
    expect(token.status, token.text).toBe(201);
    return token.body.token;
  }

  const pay = (link: string, token: string, key = `pay-${token}`) =>
    api(vault.url, 'POST', `/pay/${link}/payments`, { json: { token }, headers: { 'Idempotency-Key': key } });

  const eventsOf = async (type: string, link: string) => {
    const page = await api(vault.url, 'GET', '/v1/events?limit=100', { key: shop.secretKey });
    return (page.body.data as Array<{ type?: string; data?: { object: { id: string } } }>).filter((e) => e.type === type && e.data?.object.id === link);
  };

  it('makes a link with 201: an active link on the vault origin, 24 hours by default, one payment, and a payment_link.created event', async () => {
    const before = Date.now();
    const made = await createLink({ description: 'Invoice 77', reference: 'inv-77', customer_email: 'ada@example.com' });
    expect(made.status, made.text).toBe(201);
    expect(made.body).toMatchObject({
      id: expect.stringMatching(/^plink_[A-Za-z0-9]{22}$/),
      object: 'payment_link',
      status: 'active',
      amount: 4200,
      currency: 'EUR',
      description: 'Invoice 77',
      reference: 'inv-77',
      customer_email: 'ada@example.com',
      max_payments: 1,
      payments_count: 0,
      latest_payment: null,
      completed_at: null,
      expired_at: null,
    });
    expect(made.body.url).toBe(`${vault.url}/pay/${made.body.id}`);
    const lifetime = Date.parse(made.body.expires_at) - before;
    expect(lifetime).toBeGreaterThan(24 * 3600_000 - 60_000);
    expect(lifetime).toBeLessThanOrEqual(24 * 3600_000 + 60_000);

    expect((await api(vault.url, 'GET', `/v1/payment-links/${made.body.id}`, { key: shop.secretKey })).body).toEqual(made.body);
    const listed = await api(vault.url, 'GET', '/v1/payment-links?status=active&limit=100', { key: shop.secretKey });
    expect(listed.body.data.map((l: { id: string }) => l.id)).toContain(made.body.id);
    const other = await createMerchant(vault, { name: 'Other Shop' });
    expect((await api(vault.url, 'GET', `/v1/payment-links/${made.body.id}`, { key: other.secretKey })).body.error.code).toBe('payment_link_not_found');
    expect(await eventsOf('payment_link.created', made.body.id)).toHaveLength(1);
  });

  it.each([
    ['an expiry in the past', { expires_at: new Date(Date.now() - 1000).toISOString() }, 400, 'parameter_invalid', 'expires_at'],
    ['an expiry past 70 days', { expires_at: new Date(Date.now() + 71 * 24 * 3600_000).toISOString() }, 400, 'parameter_invalid', 'expires_at'],
    ['an expiry that is not a date', { expires_at: 'tomorrow' }, 400, 'parameter_invalid', 'expires_at'],
    ['a lower-case currency', { currency: 'eur' }, 400, 'parameter_invalid', 'currency'],
    ['no payments allowed', { max_payments: 0 }, 400, 'parameter_invalid', 'max_payments'],
    ['a description holding a card number', { description: 'card 4242 4242 4242 4242' }, 422, 'card_number_not_allowed', 'description'],
    ['an e-mail that is not one', { customer_email: 'ada' }, 400, 'parameter_invalid', 'customer_email'],
  ])('refuses %s and stores nothing', async (_what, body, status, code, param) => {
    const count = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from payment_links')).rows[0]!.n;
    const before = await count();
    const refused = await createLink(body);
    expect({ status: refused.status, code: refused.body.error?.code, param: refused.body.error?.param }).toEqual({ status, code, param });
    expect(refused.text).not.toContain('4242');
    expect(await count()).toBe(before);
  });

  it('serves the hosted page on the vault origin with a strict CSP, in the shopper’s locale; an unknown link is 404', async () => {
    const made = await createLink({ description: 'Invoice 78' });
    const page = await fetch(`${vault.url}/pay/${made.body.id}`, { headers: { 'Accept-Language': 'fr-FR,fr;q=0.9' } });
    const html = await page.text();
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(html).toContain('<html lang="fr" dir="ltr">');
    expect(html).toContain('Atelier Lumière');
    expect(html).toContain('42,00\u00a0€');
    expect(html).toContain('Invoice 78');
    const arabic = await (await fetch(`${vault.url}/pay/${made.body.id}?locale=ar`)).text();
    expect(arabic).toContain('dir="rtl"');
    expect((await fetch(`${vault.url}/pay/plink_doesnotexist`)).status).toBe(404);
  });

  it('pays a link once: a decline leaves it active, an approved payment completes it with a payment_link.paid event, a replay answers the same', async () => {
    const made = await createLink({ reference: 'inv-79' });
    const link = made.body.id as string;

    const declined = await pay(link, await pageToken(SANDBOX_CARDS.insufficient_funds));
    expect({ status: declined.status, code: declined.body.error.code, decline: declined.body.error.decline_code }).toEqual({
      status: 402,
      code: 'card_declined',
      decline: 'insufficient_funds',
    });
    expect((await api(vault.url, 'GET', `/v1/payment-links/${link}`, { key: shop.secretKey })).body).toMatchObject({ status: 'active', payments_count: 0 });

    const token = await pageToken();
    const paid = await pay(link, token);
    expect(paid.status, paid.text).toBe(201);
    expect(paid.body).toMatchObject({ object: 'payment', status: 'captured', amount: 4200, currency: 'EUR', reference: 'inv-79' });
    const again = await pay(link, token);
    expect(again.text).toBe(paid.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    const after = await api(vault.url, 'GET', `/v1/payment-links/${link}`, { key: shop.secretKey });
    expect(after.body).toMatchObject({ status: 'completed', payments_count: 1, latest_payment: paid.body.id, completed_at: expect.any(String) });
    const events = await eventsOf('payment_link.paid', link);
    expect(events).toHaveLength(1);
    expect(events[0]!.data!.object).toMatchObject({ status: 'completed', latest_payment: paid.body.id });

    const late = await pay(link, await pageToken());
    expect({ status: late.status, code: late.body.error.code }).toEqual({ status: 409, code: 'payment_link_completed' });
    const page = await (await fetch(`${vault.url}/pay/${link}`)).text();
    expect(page).toContain('data-state="completed"');
    expect(page).not.toContain('checkout');
  });

  it('takes only a single-use card-fields token of the link’s merchant', async () => {
    const link = (await createLink()).body.id as string;
    const saved = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext()), reusable: true },
    });
    const other = await createMerchant(vault, { name: 'Elsewhere' });
    for (const token of [saved.body.token, await pageToken(CARDS.visa.number, other), 'tok_nosuchtoken']) {
      const refused = await pay(link, token);
      expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 404, code: 'token_not_found' });
    }
    expect((await api(vault.url, 'GET', `/v1/payment-links/${link}`, { key: shop.secretKey })).body.payments_count).toBe(0);
  });

  it('makes exactly one payment when several shoppers pay the last slot at once', async () => {
    for (let round = 0; round < 3; round++) {
      const link = (await createLink({ max_payments: 2 })).body.id as string;
      expect((await pay(link, await pageToken())).status).toBe(201);
      const tokens = await Promise.all(Array.from({ length: 4 }, () => pageToken()));
      const answers = await Promise.all(tokens.map((token) => pay(link, token)));
      const statuses = answers.map((a) => (a.status === 201 ? 'paid' : a.body.error.code));
      expect(statuses.filter((s) => s === 'paid')).toHaveLength(1);
      for (const s of statuses) expect(['paid', 'payment_link_busy', 'payment_link_completed']).toContain(s);
      const { rows } = await vault.vault.db.query<{ n: number }>('select count(*)::int as n from payment_link_payments where link_id = $1', [link]);
      expect(rows[0]!.n).toBe(2);
      expect((await api(vault.url, 'GET', `/v1/payment-links/${link}`, { key: shop.secretKey })).body).toMatchObject({ status: 'completed', payments_count: 2 });
    }
  });

  it('expires a link on request with a payment_link.expired event; the page then takes no card, and a paid link cannot expire', async () => {
    const link = (await createLink()).body.id as string;
    const expired = await api(vault.url, 'POST', `/v1/payment-links/${link}/expire`, { key: shop.secretKey });
    expect(expired.status, expired.text).toBe(200);
    expect(expired.body).toMatchObject({ status: 'expired', expired_at: expect.any(String) });
    const twice = await api(vault.url, 'POST', `/v1/payment-links/${link}/expire`, { key: shop.secretKey });
    expect(twice.body).toMatchObject({ status: 'expired', expired_at: expired.body.expired_at });
    expect(await eventsOf('payment_link.expired', link)).toHaveLength(1);

    const refused = await pay(link, await pageToken());
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 409, code: 'payment_link_expired' });
    const page = await (await fetch(`${vault.url}/pay/${link}`)).text();
    expect(page).toContain('data-state="expired"');
    expect(page).not.toContain('id="card"');

    const paidLink = (await createLink()).body.id as string;
    expect((await pay(paidLink, await pageToken())).status).toBe(201);
    const notExpirable = await api(vault.url, 'POST', `/v1/payment-links/${paidLink}/expire`, { key: shop.secretKey });
    expect({ status: notExpirable.status, code: notExpirable.body.error.code }).toEqual({ status: 409, code: 'payment_link_completed' });
  });

  it('expires a link at its expires_at by a job, with its event', async () => {
    const made = await createLink({ expires_at: new Date(Date.now() + 1500).toISOString() });
    const link = made.body.id as string;
    const deadline = Date.now() + 20_000;
    while ((await eventsOf('payment_link.expired', link)).length === 0) {
      if (Date.now() > deadline) throw new Error('the link was not expired by its job');
      await sleep(100);
    }
    const { rows } = await vault.vault.db.query<{ status: string }>('select status from payment_links where id = $1', [link]);
    expect(rows[0]!.status).toBe('expired');
    const [event] = await eventsOf('payment_link.expired', link);
    expect(event!.data!.object).toMatchObject({ status: 'expired', url: made.body.url });
  });
});
