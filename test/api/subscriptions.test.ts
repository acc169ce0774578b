import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { SANDBOX_CARDS } from '../support/cards.ts';
import { savedCardWithCredential } from '../support/stored-credentials.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

const DAY_MS = 86_400_000;
const nextYear = new Date().getUTCFullYear() + 1;
/** The first Feb 29 still to come. */
const leapYear = (() => {
  let year = nextYear;
  while (new Date(Date.UTC(year, 1, 29)).getUTCMonth() !== 1) year++;
  return year;
})();
const iso = (ms: number) => new Date(ms).toISOString();

describe.each(storageKinds())('subscriptions on %s', (storage) => {
  let vault: TestVault;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'subscriptions' });
  });
  afterAll(() => vault?.close());

  /** A merchant of its own for each test: each has its own sandbox clock, which never goes back. */
  async function merchantWithCard(number?: string) {
    const shop = await createMerchant(vault, { name: 'Coffee Club' });
    const card = await savedCardWithCredential(vault.url, shop, { ...(number === undefined ? {} : { number }), customer: 'cus_42' });
    return { shop, card };
  }
  const subscribe = (shop: TestMerchant, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    api(vault.url, 'POST', '/v1/subscriptions', { key: shop.secretKey, json: { amount: 999, currency: 'EUR', interval: 'month', ...body }, headers });
  const advance = async (shop: TestMerchant, to: string) => {
    const response = await api(vault.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: { advance_to: to } });
    expect(response.status, response.text).toBe(200);
    expect(response.body.status).toBe('ready');
    return response.body;
  };
  const read = async (shop: TestMerchant, id: string) => (await api(vault.url, 'GET', `/v1/subscriptions/${id}`, { key: shop.secretKey })).body;
  const paymentsOf = async (shop: TestMerchant, id: string) =>
    (await api(vault.url, 'GET', `/v1/payments?subscription=${id}&limit=100`, { key: shop.secretKey })).body.data.reverse();
  const eventTypes = async (shop: TestMerchant) =>
    (await api(vault.url, 'GET', '/v1/events?limit=100', { key: shop.secretKey })).body.data
      .map((event: { type?: string }) => event.type)
      .filter((type: string | undefined) => type?.startsWith('subscription.'))
      .reverse();
  /** The dates of the tries made, oldest first, as the charge records keep them. */
  const triedOn = async (id: string) =>
    (
      await vault.vault.db.query<{ due_at: Date; outcome: string }>(
        'select due_at, outcome from subscription_charges where subscription_id = $1 order by period, attempt',
        [id],
      )
    ).rows.map((row) => `${row.due_at.toISOString().slice(0, 10)} ${row.outcome}`);

  it('creates a subscription on a card with a stored credential, due at start_at, with a subscription.created event', async () => {
    const { shop, card } = await merchantWithCard();
    const startAt = `${nextYear}-03-15T10:00:00.000Z`;
    const created = await subscribe(shop, { token: card.token, start_at: startAt, reference: 'plan-basic-cus_42' });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^sub_[0-9A-Za-z]{22}$/),
      object: 'subscription',
      status: 'active',
      token: card.token,
      customer: 'cus_42',
      amount: 999,
      currency: 'EUR',
      interval: 'month',
      interval_count: 1,
      start_at: startAt,
      next_charge_at: startAt,
      reference: 'plan-basic-cus_42',
      periods_paid: 0,
      failed_attempts: 0,
      latest_payment: null,
      canceled_at: null,
    });
    expect(await read(shop, created.body.id)).toEqual(created.body);
    expect(await eventTypes(shop)).toEqual(['subscription.created']);
  });

  it('refuses a subscription without a stored credential, on an unknown or another merchant\'s token, or with bad terms, storing nothing', async () => {
    const { shop, card } = await merchantWithCard();
    const other = await merchantWithCard();
    const count = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from subscriptions')).rows[0]!.n;
    const before = await count();
    const cases: [Record<string, unknown>, number, string, string?][] = [
      [{ token: other.card.token }, 404, 'token_not_found', 'token'],
      [{ token: 'tok_doesNotExist' }, 404, 'token_not_found', 'token'],
      [{ token: card.token, interval: 'fortnight' }, 400, 'parameter_invalid', 'interval'],
      [{ token: card.token, interval: 'month', interval_count: 13 }, 400, 'parameter_invalid', 'interval_count'],
      [{ token: card.token, interval: 'week', interval_count: 0 }, 400, 'parameter_invalid', 'interval_count'],
      [{ token: card.token, start_at: '2001-01-01T00:00:00Z' }, 400, 'parameter_invalid', 'start_at'],
      [{ token: card.token, start_at: 'next tuesday' }, 400, 'parameter_invalid', 'start_at'],
      [{ token: card.token, amount: 0 }, 400, 'parameter_invalid', 'amount'],
      [{ token: card.token, currency: 'eur' }, 400, 'parameter_invalid', 'currency'],
      [{ token: card.token, reference: '4242 4242 4242 4242' }, 422, 'card_number_not_allowed', 'reference'],
    ];
    for (const [body, status, code, param] of cases) {
      const response = await subscribe(shop, body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(response.body.error).toMatchObject({ code, ...(param === undefined ? {} : { param }) });
    }
    // A saved card charged once without setup_future_usage has no chain for the vault to continue.
    const unchained = await savedCardWithCredential(vault.url, shop);
    await vault.vault.db.query('update tokens set network_transaction_id = null where token = $1', [unchained.token]);
    const refused = await subscribe(shop, { token: unchained.token });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'stored_credential_required', param: 'token' });
    expect(await count()).toBe(before);
  });

  it('reads and lists a merchant\'s subscriptions, by customer and status, and answers 404 for another merchant\'s', async () => {
    const { shop, card } = await merchantWithCard();
    const other = await merchantWithCard();
    const first = (await subscribe(shop, { token: card.token, start_at: `${nextYear}-06-01T00:00:00Z` })).body;
    const second = (await subscribe(shop, { token: card.token, start_at: `${nextYear}-06-02T00:00:00Z`, interval: 'year' })).body;
    await api(vault.url, 'POST', `/v1/subscriptions/${first.id}/cancel`, { key: shop.secretKey, json: {} });

    const all = await api(vault.url, 'GET', '/v1/subscriptions?customer=cus_42', { key: shop.secretKey });
    expect(all.body.data.map((s: { id: string }) => s.id)).toEqual([second.id, first.id]);
    const active = await api(vault.url, 'GET', '/v1/subscriptions?status=active', { key: shop.secretKey });
    expect(active.body.data.map((s: { id: string }) => s.id)).toEqual([second.id]);
    const page = await api(vault.url, 'GET', '/v1/subscriptions?limit=1', { key: shop.secretKey });
    expect(page.body).toMatchObject({ has_more: true, data: [{ id: second.id }] });
    const next = await api(vault.url, 'GET', `/v1/subscriptions?limit=1&starting_after=${second.id}`, { key: shop.secretKey });
    expect(next.body.data.map((s: { id: string }) => s.id)).toEqual([first.id]);

    const foreign = await api(vault.url, 'GET', `/v1/subscriptions/${first.id}`, { key: other.shop.secretKey });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('subscription_not_found');
    expect((await api(vault.url, 'POST', `/v1/subscriptions/${first.id}/cancel`, { key: other.shop.secretKey, json: {} })).status).toBe(404);
  });

  it('replays a subscription creation sent again with the same Idempotency-Key', async () => {
    const { shop, card } = await merchantWithCard();
    const body = { token: card.token, start_at: `${nextYear}-02-01T00:00:00Z` };
    const first = await subscribe(shop, body, { 'Idempotency-Key': 'sub-once' });
    const again = await subscribe(shop, body, { 'Idempotency-Key': 'sub-once' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(first.text);
    expect((await api(vault.url, 'GET', '/v1/subscriptions', { key: shop.secretKey })).body.data).toHaveLength(1);
  });

  it('charges a monthly subscription started on Jan 31 on Feb 28 and Mar 31, each a merchant-initiated payment on the chain', async () => {
    const { shop, card } = await merchantWithCard();
    const sub = (await subscribe(shop, { token: card.token, start_at: `${nextYear}-01-31T09:00:00Z`, reference: 'coffee-monthly' })).body;

    const first = await advance(shop, `${nextYear}-01-31T09:00:00Z`);
    expect(first.charges).toEqual({ succeeded: 1, failed: 0 });
    expect(await read(shop, sub.id)).toMatchObject({
      status: 'active',
      periods_paid: 1,
      current_period_start: `${nextYear}-01-31T09:00:00.000Z`,
      current_period_end: `${nextYear}-02-28T09:00:00.000Z`,
      next_charge_at: `${nextYear}-02-28T09:00:00.000Z`,
    });
    await advance(shop, `${nextYear}-03-01T00:00:00Z`);
    expect((await read(shop, sub.id)).next_charge_at).toBe(`${nextYear}-03-31T09:00:00.000Z`);
    await advance(shop, `${nextYear}-04-01T00:00:00Z`);
    expect(await read(shop, sub.id)).toMatchObject({ periods_paid: 3, next_charge_at: `${nextYear}-04-30T09:00:00.000Z` });
    expect(await triedOn(sub.id)).toEqual([`${nextYear}-01-31 succeeded`, `${nextYear}-02-28 succeeded`, `${nextYear}-03-31 succeeded`]);

    const payments = await paymentsOf(shop, sub.id);
    expect(payments).toHaveLength(3);
    for (const payment of payments) {
      expect(payment).toMatchObject({ status: 'captured', amount: 999, initiator: 'merchant', agreement: 'subscription', reference: 'coffee-monthly', subscription: sub.id });
      const { rows } = await vault.vault.db.query<{ previous_network_transaction_id: string }>(
        'select previous_network_transaction_id from sandbox_acquirer_authorizations where reference = $1',
        [payment.id],
      );
      expect(rows[0]!.previous_network_transaction_id).toBe(card.networkTransactionId);
    }
    expect((await read(shop, sub.id)).latest_payment).toBe(payments[2].id);
    expect(await eventTypes(shop)).toEqual(['subscription.created', 'subscription.charged', 'subscription.charged', 'subscription.charged']);
  });

  it('charges a yearly subscription started on Feb 29 on Feb 28 in common years and on Feb 29 in the next leap year', async () => {
    const { shop, card } = await merchantWithCard();
    const sub = (await subscribe(shop, { token: card.token, start_at: `${leapYear}-02-29T12:00:00Z`, interval: 'year' })).body;
    const done = await advance(shop, `${leapYear + 4}-03-01T00:00:00Z`);
    expect(done.charges).toEqual({ succeeded: 5, failed: 0 });
    expect(await triedOn(sub.id)).toEqual([
      `${leapYear}-02-29 succeeded`,
      `${leapYear + 1}-02-28 succeeded`,
      `${leapYear + 2}-02-28 succeeded`,
      `${leapYear + 3}-02-28 succeeded`,
      `${leapYear + 4}-02-29 succeeded`,
    ]);
    expect((await read(shop, sub.id)).next_charge_at).toBe(`${leapYear + 5}-02-28T12:00:00.000Z`);
  });

  it('charges every interval_count units: every second week, and every third day', async () => {
    const { shop, card } = await merchantWithCard();
    const start = Date.UTC(nextYear, 4, 1, 8);
    const fortnightly = (await subscribe(shop, { token: card.token, start_at: iso(start), interval: 'week', interval_count: 2 })).body;
    const everyThirdDay = (await subscribe(shop, { token: card.token, start_at: iso(start), interval: 'day', interval_count: 3 })).body;
    await advance(shop, iso(start + 42 * DAY_MS));
    expect(await read(shop, fortnightly.id)).toMatchObject({ periods_paid: 4, next_charge_at: iso(start + 56 * DAY_MS) });
    expect(await read(shop, everyThirdDay.id)).toMatchObject({ periods_paid: 15, next_charge_at: iso(start + 45 * DAY_MS) });
  });

  it('retries a declined charge 1, 3 and 5 days after the try before, then makes the subscription unpaid', async () => {
    const { shop, card } = await merchantWithCard(SANDBOX_CARDS.merchant_initiated_declined);
    const start = Date.UTC(nextYear, 0, 10, 6);
    const sub = (await subscribe(shop, { token: card.token, start_at: iso(start) })).body;

    const first = await advance(shop, iso(start));
    expect(first.charges).toEqual({ succeeded: 0, failed: 1 });
    expect(await read(shop, sub.id)).toMatchObject({ status: 'past_due', failed_attempts: 1, periods_paid: 0, next_charge_at: iso(start + DAY_MS) });
    await advance(shop, iso(start + DAY_MS));
    expect(await read(shop, sub.id)).toMatchObject({ status: 'past_due', failed_attempts: 2, next_charge_at: iso(start + 4 * DAY_MS) });
    await advance(shop, iso(start + 30 * DAY_MS));
    expect(await read(shop, sub.id)).toMatchObject({ status: 'unpaid', failed_attempts: 4, next_charge_at: null, periods_paid: 0 });
    expect(await triedOn(sub.id)).toEqual(
      [0, 1, 4, 9].map((days) => `${iso(start + days * DAY_MS).slice(0, 10)} failed`),
    );
    const payments = await paymentsOf(shop, sub.id);
    expect(payments.map((p: { status: string; decline_code: string }) => `${p.status} ${p.decline_code}`)).toEqual(Array(4).fill('declined insufficient_funds'));
    expect(await eventTypes(shop)).toEqual(['subscription.created', ...Array(4).fill('subscription.charge_failed')]);
    // Unpaid is the end of dunning: nothing more is tried.
    await advance(shop, iso(start + 100 * DAY_MS));
    expect(await paymentsOf(shop, sub.id)).toHaveLength(4);
  });

  it('goes back to active when a retry succeeds, and keeps its calendar', async () => {
    const { shop, card } = await merchantWithCard(SANDBOX_CARDS.merchant_initiated_alternating);
    const start = Date.UTC(nextYear, 0, 31, 6);
    const sub = (await subscribe(shop, { token: card.token, start_at: iso(start) })).body;
    await advance(shop, iso(start));
    expect((await read(shop, sub.id)).status).toBe('past_due');
    await advance(shop, iso(start + DAY_MS));
    expect(await read(shop, sub.id)).toMatchObject({
      status: 'active',
      failed_attempts: 0,
      periods_paid: 1,
      next_charge_at: `${nextYear}-02-28T06:00:00.000Z`,
    });
    expect(await eventTypes(shop)).toEqual(['subscription.created', 'subscription.charge_failed', 'subscription.charged']);
  });

  it('charges nothing after a cancel; a second cancel answers the canceled subscription and makes no event', async () => {
    const { shop, card } = await merchantWithCard();
    const start = Date.UTC(nextYear, 2, 1);
    const sub = (await subscribe(shop, { token: card.token, start_at: iso(start) })).body;
    await advance(shop, iso(start + 10 * DAY_MS));
    const canceled = await api(vault.url, 'POST', `/v1/subscriptions/${sub.id}/cancel`, { key: shop.secretKey, json: {} });
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', next_charge_at: null, periods_paid: 1 });
    // Canceled on the merchant's clock, which the advance moved.
    expect(canceled.body.canceled_at.slice(0, 10)).toBe(iso(start + 10 * DAY_MS).slice(0, 10));
    await advance(shop, iso(start + 200 * DAY_MS));
    expect(await paymentsOf(shop, sub.id)).toHaveLength(1);
    const again = await api(vault.url, 'POST', `/v1/subscriptions/${sub.id}/cancel`, { key: shop.secretKey, json: {} });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(canceled.body);
    expect(await eventTypes(shop)).toEqual(['subscription.created', 'subscription.charged', 'subscription.canceled']);
  });

  it('fails a charge without a payment when the token was deleted, and dunning follows', async () => {
    const { shop, card } = await merchantWithCard();
    const start = Date.UTC(nextYear, 5, 1);
    const sub = (await subscribe(shop, { token: card.token, start_at: iso(start) })).body;
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${card.token}`, { key: shop.secretKey })).status).toBe(200);
    const done = await advance(shop, iso(start));
    expect(done.charges).toEqual({ succeeded: 0, failed: 1 });
    expect(await read(shop, sub.id)).toMatchObject({ status: 'past_due', failed_attempts: 1, latest_payment: null });
    expect(await paymentsOf(shop, sub.id)).toHaveLength(0);
    const events = (await api(vault.url, 'GET', '/v1/events?limit=5', { key: shop.secretKey })).body.data;
    expect(events.find((e: { type?: string }) => e.type === 'subscription.charge_failed')).toMatchObject({ code: 'token_not_found' });
  });

  it('keeps a sandbox clock per merchant that only moves forward', async () => {
    const { shop } = await merchantWithCard();
    const other = await merchantWithCard();
    const before = await api(vault.url, 'GET', '/v1/sandbox/clock', { key: shop.secretKey });
    expect(before.body).toMatchObject({ object: 'sandbox_clock', status: 'ready' });
    expect(Math.abs(Date.parse(before.body.now) - Date.now())).toBeLessThan(60_000);

    await advance(shop, `${nextYear + 1}-01-01T00:00:00Z`);
    const after = await api(vault.url, 'GET', '/v1/sandbox/clock', { key: shop.secretKey });
    expect(Date.parse(after.body.now)).toBeGreaterThanOrEqual(Date.parse(`${nextYear + 1}-01-01T00:00:00Z`));
    expect(Math.abs(Date.parse((await api(vault.url, 'GET', '/v1/sandbox/clock', { key: other.shop.secretKey })).body.now) - Date.now())).toBeLessThan(60_000);

    const back = await api(vault.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: { advance_to: `${nextYear}-06-01T00:00:00Z` } });
    expect(back.status).toBe(422);
    expect(back.body.error).toMatchObject({ code: 'clock_cannot_go_back', param: 'advance_to' });
    for (const body of [{}, { advance_to: 'soon' }, { advance_to: `${nextYear + 30}-01-01T00:00:00Z` }, { advance_to: `${nextYear + 1}-02-01T00:00:00Z`, extra: 1 }]) {
      expect((await api(vault.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: body })).status, JSON.stringify(body)).toBe(400);
    }
    const publishable = await api(vault.url, 'POST', '/v1/sandbox/clock', { key: shop.publishableKey, json: { advance_to: `${nextYear + 2}-01-01T00:00:00Z` } });
    expect(publishable.status).toBe(403);
  });
});

describe.each(storageKinds())('subscriptions in real time on %s', (storage) => {
  let vault: TestVault;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'subscriptions-real-time', env: { TESSERA_SUBSCRIPTION_SCAN_MS: '200', TESSERA_JOB_POLL_MS: '100' } });
  });
  afterAll(() => vault?.close());

  it('charges a subscription when its date comes, with nobody advancing the clock', async () => {
    const shop = await createMerchant(vault);
    const card = await savedCardWithCredential(vault.url, shop);
    const startAt = new Date(Date.now() + 1500).toISOString();
    const sub = await api(vault.url, 'POST', '/v1/subscriptions', {
      key: shop.secretKey,
      json: { token: card.token, amount: 500, currency: 'EUR', interval: 'day', start_at: startAt },
    });
    expect(sub.status, sub.text).toBe(201);
    await expect
      .poll(async () => (await api(vault.url, 'GET', `/v1/subscriptions/${sub.body.id}`, { key: shop.secretKey })).body.periods_paid, { timeout: 15_000, interval: 200 })
      .toBe(1);
    const payments = (await api(vault.url, 'GET', `/v1/payments?subscription=${sub.body.id}`, { key: shop.secretKey })).body.data;
    expect(payments).toHaveLength(1);
    expect(Date.parse(payments[0].created_at)).toBeGreaterThanOrEqual(Date.parse(startAt));
  });
});
