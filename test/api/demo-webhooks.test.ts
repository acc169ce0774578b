/**
 * The demo shop's webhooks against a real vault, without a browser: the shop
 * registers its endpoint at start (once, found again after a restart, made
 * again when deleted, its secret rotated when lost), verifies every
 * delivery's Standard Webhooks signature, stores each event once by its
 * `webhook-id`, and pays an order from `payment.captured` when the answer
 * to the payment never reached it. The journey on the dashboard is in
 * test/e2e/demo-webhooks.spec.ts.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWebhookUrl, type DemoMerchant } from '../../demo/server/config.ts';
import { WEBHOOK_EVENTS, webhookEndpointPath } from '../../demo/server/webhook-endpoint.ts';
import { DEMO_MERCHANT_ORIGIN } from '../../server/merchants/demo.ts';
import { api, createMerchant, type ApiResponse } from '../support/api.ts';
import { SANDBOX_CARDS } from '../support/cards.ts';
import { dumpTables } from '../support/leaks.ts';
import { startLossyLink } from '../support/lossy-link.ts';
import { DASHBOARD_PASSWORD, fieldsToken, Shopper, startTestShop, type TestShop } from '../support/shop.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

const WHSEC = /whsec_[A-Za-z0-9+/]{20,}/;

interface StoredEvent {
  id: string;
  type: string;
  object_id: string | null;
  effect: string | null;
  received_at: Date;
}

describe('the demo shop’s webhooks', () => {
  let vault: TestVault;
  const shops: TestShop[] = [];

  beforeAll(async () => {
    vault = await startTestVault({ name: 'demo-webhooks', env: { TESSERA_WEBHOOK_ALLOW_LOCAL: '1', TESSERA_WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,400ms' } });
  });
  afterAll(async () => {
    for (const shop of shops) await shop.close();
    await vault?.close();
  });

  /** A merchant of the test's own, allowing the demo shop's origin: its endpoints are the test's alone. */
  async function newMerchant(): Promise<DemoMerchant> {
    const created = await createMerchant(vault, { name: 'Demo Shop (webhooks)', allowedOrigins: [DEMO_MERCHANT_ORIGIN] });
    return { merchantId: created.id, publishableKey: created.publishableKey, secretKey: created.secretKey };
  }

  async function startShop(merchant: DemoMerchant, options: { dataDir?: string; port?: number; vaultUrl?: string; webhookUrl?: string } = {}): Promise<TestShop> {
    const shop = await startTestShop({ merchant, vaultUrl: options.vaultUrl ?? vault.url, name: 'demo-webhooks-shop', ...options });
    shops.push(shop);
    return shop;
  }

  const endpointsOf = async (merchant: DemoMerchant) =>
    (await api(vault.url, 'GET', '/v1/webhook-endpoints', { key: merchant.secretKey })).body.data as { id: string; url: string; events: string[]; disabled: boolean }[];
  const savedEndpoint = (shop: TestShop) => JSON.parse(readFileSync(webhookEndpointPath(shop.dataDir), 'utf8')) as { id: string; url: string; secret: string };
  const storedEvents = async (shop: TestShop) =>
    (await shop.db.query<StoredEvent>('select id, type, object_id, effect, received_at from webhook_events order by received_at')).rows;
  const orderOf = async (shop: TestShop, id: string) =>
    (await shop.db.query<{ status: string; payment_id: string | null; session_id: string | null }>('select status, payment_id, session_id from orders where id = $1', [id])).rows[0];

  async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function owner(shop: TestShop): Promise<Shopper> {
    const dashboard = new Shopper(() => shop);
    expect((await dashboard.call('POST', '/api/dashboard/login', { json: { password: DASHBOARD_PASSWORD } })).status).toBe(200);
    return dashboard;
  }

  async function shopperWithCart(shop: TestShop): Promise<Shopper> {
    const shopper = new Shopper(() => shop);
    expect((await shopper.call('POST', '/api/cart', { json: { product_id: 'nippers', quantity: 1 } })).status).toBe(200);
    return shopper;
  }

  /** A guest buys the tile nippers; answers the order. */
  async function buy(shop: TestShop, merchant: DemoMerchant): Promise<{ id: string; status: string }> {
    const paid = await (await shopperWithCart(shop)).call('POST', '/api/checkout', { json: { token: await fieldsToken(vault.url, merchant) } });
    expect(paid.status, paid.text).toBe(201);
    return paid.body.order;
  }

  /** An order the shop made and that is still unpaid: its only card was declined. */
  async function unpaidOrder(shop: TestShop, merchant: DemoMerchant): Promise<string> {
    const declined = await (await shopperWithCart(shop)).call('POST', '/api/checkout', {
      json: { token: await fieldsToken(vault.url, merchant, { number: SANDBOX_CARDS.generic_decline }) },
    });
    expect(declined.status).toBe(402);
    const { rows } = await shop.db.query<{ id: string }>(`select id from orders where status = 'awaiting_payment' order by created_at desc limit 1`);
    return rows[0]!.id;
  }

  /** A POST to the shop's receiver, as anyone on the network can send one. */
  function postWebhook(shop: TestShop, body: string, headers: Record<string, string>): Promise<ApiResponse> {
    return api(shop.url, 'POST', '/webhooks/tessera', { raw: body, contentType: 'application/json', headers });
  }

  /** A webhook signed the Standard Webhooks way with `secret`, at `timestamp` (seconds). */
  function signed(secret: string, event: { id: string; [field: string]: unknown }, timestamp = Math.floor(Date.now() / 1000)) {
    const body = JSON.stringify(event);
    return {
      body,
      headers: {
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': new Webhook(secret).sign(event.id, new Date(timestamp * 1000), body),
      },
    };
  }

  /** A `payment.captured` event for `orderId`, shaped as the vault sends it. */
  const capturedEvent = (id: string, orderId: string, status = 'captured') => ({
    id,
    object: 'event',
    type: 'payment.captured',
    created_at: new Date().toISOString(),
    data: {
      object: {
        id: `pay_${id.slice(4)}`,
        object: 'payment',
        status,
        amount: 1850,
        currency: 'EUR',
        amount_captured: 1850,
        amount_refunded: status === 'refunded' ? 1850 : 0,
        token: 'tok_webhooktest',
        card: { brand: 'visa', last4: '4242' },
        reference: orderId,
        decline_code: null,
        created_at: new Date().toISOString(),
      },
    },
  });

  it('registers one endpoint at its first start, keeps its secret in its data folder (0600), and reuses it when started again', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const [endpoint, ...others] = await endpointsOf(merchant);
    expect(others).toEqual([]);
    expect(endpoint).toMatchObject({ url: defaultWebhookUrl(shop.port), disabled: false });
    expect([...endpoint!.events].sort()).toEqual([...WEBHOOK_EVENTS].sort());
    const saved = savedEndpoint(shop);
    expect(saved).toEqual({ id: endpoint!.id, url: endpoint!.url, secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{40,}={0,2}$/) });
    expect(statSync(webhookEndpointPath(shop.dataDir)).mode & 0o777).toBe(0o600);
    await shop.close();

    const again = await startShop(merchant, { dataDir: shop.dataDir, port: shop.port });
    expect(await endpointsOf(merchant)).toMatchObject([{ id: endpoint!.id, url: endpoint!.url }]);
    expect(savedEndpoint(again)).toEqual(saved);
    expect(readFileSync(again.logFile, 'utf8')).toContain('webhook endpoint found at the vault; reused');
    await again.close();

    // Started on another port: the same endpoint, pointed at the new one.
    const moved = await startShop(merchant, { dataDir: shop.dataDir });
    expect(await endpointsOf(merchant)).toMatchObject([{ id: endpoint!.id, url: defaultWebhookUrl(moved.port) }]);
    expect(savedEndpoint(moved)).toEqual({ ...saved, url: defaultWebhookUrl(moved.port) });
    expect((await buy(moved, merchant)).status).toBe('captured');
    await until('the purchase’s events', () => storedEvents(moved), (events) => events.some((event) => event.type === 'payment.captured'));
  });

  it('makes a new endpoint when its endpoint was deleted at the vault, and rotates the secret of the one it finds when its secret was lost', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const first = savedEndpoint(shop);
    await shop.close();
    expect((await api(vault.url, 'DELETE', `/v1/webhook-endpoints/${first.id}`, { key: merchant.secretKey })).status).toBe(200);

    const afterDelete = await startShop(merchant, { dataDir: shop.dataDir, port: shop.port });
    const second = savedEndpoint(afterDelete);
    expect(second.id).not.toBe(first.id);
    expect(await endpointsOf(merchant)).toMatchObject([{ id: second.id, url: first.url }]);
    await afterDelete.close();

    rmSync(webhookEndpointPath(shop.dataDir));
    const afterLoss = await startShop(merchant, { dataDir: shop.dataDir, port: shop.port });
    const third = savedEndpoint(afterLoss);
    expect(third.id).toBe(second.id);
    expect(third.secret).not.toBe(second.secret);
    expect(await endpointsOf(merchant)).toHaveLength(1);
    expect(readFileSync(afterLoss.logFile, 'utf8')).toContain('its secret was rotated');

    // Deliveries come signed with the new secret too (and the old one, for a day), and the shop takes them.
    const order = await buy(afterLoss, merchant);
    const events = await until('the purchase’s events', () => storedEvents(afterLoss), (stored) => stored.some((event) => event.type === 'payment.captured'));
    const { rows } = await afterLoss.db.query<{ payment_id: string }>('select payment_id from orders where id = $1', [order.id]);
    expect(events.find((event) => event.type === 'payment.captured')!.object_id).toBe(rows[0]!.payment_id);
  });

  it('stores each delivered event once; a resend from the dashboard makes a second attempt and changes nothing', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const order = await buy(shop, merchant);
    const paymentId = (await orderOf(shop, order.id))!.payment_id!;
    const events = await until('the purchase’s events', () => storedEvents(shop), (stored) => stored.length === 2);
    expect(events.map((event) => [event.type, event.object_id]).sort()).toEqual([
      ['payment.authorized', paymentId],
      ['payment.captured', paymentId],
    ]);
    const captured = events.find((event) => event.type === 'payment.captured')!;

    const dashboard = await owner(shop);
    const listed = await until(
      'the deliveries',
      async () => (await dashboard.call('GET', '/api/dashboard/webhooks')).body,
      (body) => body.deliveries.length === 2 && body.deliveries.every((delivery: { state: string }) => delivery.state === 'delivered'),
    );
    expect(listed.problem).toBeNull();
    const delivery = listed.deliveries.find((one: { event: string }) => one.event === captured.id);
    expect(delivery).toMatchObject({ eventType: 'payment.captured', state: 'delivered', attempts: [{ attempt: 1, statusCode: 204 }], received: { effect: captured.effect } });

    const resent = await dashboard.call('POST', `/api/dashboard/webhooks/deliveries/${delivery.id}/resend`, { json: {} });
    expect(resent.status, resent.text).toBe(202);
    const after = await until(
      'the second attempt',
      async () => (await dashboard.call('GET', '/api/dashboard/webhooks')).body.deliveries.find((one: { id: string }) => one.id === delivery.id),
      (one) => one.state === 'delivered' && one.attempts.length === 2,
    );
    expect(after.attempts.map((attempt: { statusCode: number }) => attempt.statusCode)).toEqual([204, 204]);
    expect(await storedEvents(shop)).toEqual(events);
    expect((await orderOf(shop, order.id))!.status).toBe('captured');
    expect(readFileSync(shop.logFile, 'utf8')).toMatch(new RegExp(`"webhook_event":"${captured.id}","type":"payment.captured","duplicate":true`));
  });

  it('stores an event once by its webhook-id: a second delivery of that id answers 204 and changes nothing, whatever its body', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const { secret } = savedEndpoint(shop);
    const orderId = await unpaidOrder(shop, merchant);

    const first = signed(secret, capturedEvent('evt_duplicatetest1', orderId));
    expect((await postWebhook(shop, first.body, first.headers)).status).toBe(204);
    expect(await orderOf(shop, orderId)).toMatchObject({ status: 'captured', payment_id: 'pay_duplicatetest1' });
    const stored = await shop.db.query('select * from webhook_events where id = $1', ['evt_duplicatetest1']);
    expect(stored.rows).toMatchObject([{ effect: `order ${orderId} captured` }]);

    const again = signed(secret, capturedEvent('evt_duplicatetest1', orderId, 'refunded'));
    expect((await postWebhook(shop, again.body, again.headers)).status).toBe(204);
    expect((await orderOf(shop, orderId))!.status).toBe('captured');
    expect((await shop.db.query('select * from webhook_events where id = $1', ['evt_duplicatetest1'])).rows).toEqual(stored.rows);
  });

  describe('refuses a webhook it cannot trust, with nothing stored and nothing changed', () => {
    let shop: TestShop;
    let secret: string;
    let orderId: string;
    /** What the shop stored before: the declined payment's own `payment.declined`. */
    let before: StoredEvent[];

    beforeAll(async () => {
      const merchant = await newMerchant();
      shop = await startShop(merchant);
      secret = savedEndpoint(shop).secret;
      orderId = await unpaidOrder(shop, merchant);
      before = await until('the decline’s event', () => storedEvents(shop), (events) => events.some((event) => event.type === 'payment.declined'));
    });

    const now = () => Math.floor(Date.now() / 1000);
    const otherSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    it.each([
      { name: 'without signature headers', status: 400, code: 'webhook_unsigned', make: (event: { id: string }) => ({ body: JSON.stringify(event), headers: {} }) },
      {
        name: 'with a malformed timestamp',
        status: 400,
        code: 'webhook_unsigned',
        make: (event: { id: string }) => {
          const good = signed(secret, event);
          return { body: good.body, headers: { ...good.headers, 'webhook-timestamp': `${good.headers['webhook-timestamp']}x` } };
        },
      },
      { name: 'signed with another secret (forged)', status: 401, code: 'webhook_signature_invalid', make: (event: { id: string }) => signed(otherSecret, event) },
      {
        name: 'whose body was changed after signing',
        status: 401,
        code: 'webhook_signature_invalid',
        make: (event: { id: string }) => {
          const good = signed(secret, event);
          return { body: good.body.replace('"captured"', '"refunded"'), headers: good.headers };
        },
      },
      {
        name: 'whose webhook-id was changed after signing',
        status: 401,
        code: 'webhook_signature_invalid',
        make: (event: { id: string }) => {
          const good = signed(secret, event);
          return { body: good.body, headers: { ...good.headers, 'webhook-id': 'evt_someotherid' } };
        },
      },
      { name: 'signed 10 minutes ago (stale: a replay)', status: 401, code: 'webhook_stale', make: (event: { id: string }) => signed(secret, event, now() - 600) },
      { name: 'signed 10 minutes ahead', status: 401, code: 'webhook_stale', make: (event: { id: string }) => signed(secret, event, now() + 600) },
    ])('answers $status $code to a webhook $name', async ({ status, code, make }) => {
      const event = capturedEvent(`evt_refused${code.replaceAll('_', '')}${status}`, orderId);
      const { body, headers } = make(event);
      const refused = await postWebhook(shop, body, headers);
      expect({ status: refused.status, code: refused.body.error?.code }).toEqual({ status, code });
      expect(await storedEvents(shop)).toEqual(before);
      expect(await orderOf(shop, orderId)).toMatchObject({ status: 'awaiting_payment', payment_id: null });
    });

    it('answers 400 to a signed body that is not an event, or whose id is not its webhook-id, and stores nothing', async () => {
      const notAnEvent = signed(secret, { id: 'evt_notanevent1', hello: 'world' });
      const event = JSON.stringify(capturedEvent('evt_bodyid', orderId));
      const timestamp = Math.floor(Date.now() / 1000);
      const otherId = {
        body: event,
        headers: { 'webhook-id': 'evt_headerid', 'webhook-timestamp': String(timestamp), 'webhook-signature': new Webhook(secret).sign('evt_headerid', new Date(timestamp * 1000), event) },
      };
      for (const request of [notAnEvent, otherId]) {
        const refused = await postWebhook(shop, request.body, request.headers);
        expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 400, code: 'webhook_event_invalid' });
      }
      expect(await storedEvents(shop)).toEqual(before);
      expect(await orderOf(shop, orderId)).toMatchObject({ status: 'awaiting_payment' });
    });
  });

  it('marks an order paid from payment.captured when the answer to its payment was lost, and the shopper’s next Pay shows it without charging again', async () => {
    const merchant = await newMerchant();
    const link = await startLossyLink(vault.url, (method, path) => method === 'POST' && path === '/v1/payments');
    try {
      const shop = await startShop(merchant, { vaultUrl: link.url });
      const shopper = await shopperWithCart(shop);
      const lost = await shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken(vault.url, merchant) } });
      expect(lost.status).toBe(503);
      expect(lost.body.error.code).toBe('vault_unavailable');
      expect(link.lost).toEqual(['POST /v1/payments', 'POST /v1/payments', 'POST /v1/payments']);

      // The vault charged once; the shop never heard, until the webhook.
      const { rows } = await shop.db.query<{ id: string }>(`select id from orders`);
      const orderId = rows[0]!.id;
      const payments = (await api(vault.url, 'GET', `/v1/payments?reference=${orderId}`, { key: merchant.secretKey })).body.data;
      expect(payments).toMatchObject([{ status: 'captured' }]);
      const order = await until('the order, paid by its webhook', () => orderOf(shop, orderId), (row) => row?.status === 'captured');
      expect(order!.payment_id).toBe(payments[0].id);
      const captured = (await storedEvents(shop)).find((event) => event.type === 'payment.captured')!;
      expect(captured.effect).toBe(`order ${orderId} captured`);
      expect((await shopper.call('GET', '/api/cart')).body.count).toBe(0);
      expect((await shop.db.query(`select outcome from payment_attempts where order_id = $1`, [orderId])).rows).toEqual([{ outcome: 'unknown' }]);

      // The shopper presses Pay again (the fields made a new token): the order, paid, and no second charge.
      const unusedToken = await fieldsToken(vault.url, merchant);
      const shown = await shopper.call('POST', '/api/checkout', { json: { token: unusedToken } });
      expect(shown.status, shown.text).toBe(201);
      expect(shown.body.order).toMatchObject({ id: orderId, status: 'captured', card: { brand: 'visa', last4: '4242' } });
      expect((await api(vault.url, 'GET', `/v1/payments?reference=${orderId}`, { key: merchant.secretKey })).body.data).toHaveLength(1);
      expect((await api(vault.url, 'GET', `/v1/tokens/${unusedToken}`, { key: merchant.secretKey })).body.used_at).toBeNull();
      // Shown once: then the cart is simply empty.
      expect((await shopper.call('POST', '/api/checkout', { json: { token: unusedToken } })).status).toBe(409);

      const dashboard = await (await owner(shop)).call('GET', '/api/dashboard/webhooks');
      expect(dashboard.body.deliveries.find((delivery: { event: string }) => delivery.event === captured.id)).toMatchObject({
        eventType: 'payment.captured',
        received: { effect: `order ${orderId} captured` },
      });
    } finally {
      await link.close();
    }
  });

  it('asks the vault before charging again when an attempt was left `sent` by a shop that stopped while it waited (no webhook needed)', async () => {
    const merchant = await newMerchant();
    const link = await startLossyLink(vault.url, (method, path) => method === 'POST' && path === '/v1/payments');
    try {
      // A shop without webhooks (the vault refuses this URL), so only the checkout itself can find the payment.
      const shop = await startShop(merchant, { vaultUrl: link.url, webhookUrl: 'http://10.0.0.1/webhooks/tessera' });
      const shopper = await shopperWithCart(shop);
      expect((await shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken(vault.url, merchant) } })).status).toBe(503);
      const orderId = (await shop.db.query<{ id: string }>('select id from orders')).rows[0]!.id;
      // As the shop leaves it when it stops during the call: the attempt written down, its outcome never.
      await shop.db.query(`update payment_attempts set outcome = 'sent' where order_id = $1`, [orderId]);
      await shop.close();

      // Started again, on a network that answers; the shopper's session cookie still holds.
      const restarted = await startShop(merchant, { dataDir: shop.dataDir, port: shop.port, webhookUrl: 'http://10.0.0.1/webhooks/tessera' });
      const again = await new Shopper(() => restarted).call('POST', '/api/checkout', {
        json: { token: await fieldsToken(vault.url, merchant) },
        headers: { cookie: shopper.cookie! },
      });
      expect(again.status, again.text).toBe(201);
      expect(again.body.order).toMatchObject({ id: orderId, status: 'captured' });
      expect((await api(vault.url, 'GET', `/v1/payments?reference=${orderId}`, { key: merchant.secretKey })).body.data).toHaveLength(1);
    } finally {
      await link.close();
    }
  });

  it('takes a saved card off the account when the vault tells it the card’s token was deleted', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const shopper = new Shopper(() => shop);
    const { body } = await shopper.call('POST', '/api/signup', { json: { email: 'webhook-cards@example.test', password: 'a long password' } });
    const token = await fieldsToken(vault.url, merchant, { reusable: true, customer: body.user.id });
    expect((await shopper.call('POST', '/api/cards', { json: { token } })).status).toBe(201);
    const cardId = (await shop.db.query<{ id: string }>('select id from saved_cards where token = $1', [token])).rows[0]!.id;

    // Deleted by another of the merchant's systems, straight at the vault.
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${token}`, { key: merchant.secretKey })).status).toBe(200);
    await until('the saved card', async () => (await shop.db.query('select 1 from saved_cards where token = $1', [token])).rows.length, (n) => n === 0);
    expect((await shop.db.query('select default_card from users where id = $1', [body.user.id])).rows).toEqual([{ default_card: null }]);
    expect((await storedEvents(shop)).find((event) => event.type === 'token.deleted')).toMatchObject({ object_id: token, effect: `saved card ${cardId} removed` });
  });

  it('shows the deliveries and resends only for a signed-in dashboard, and only deliveries that exist', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const visitor = new Shopper(() => shop);
    expect((await visitor.call('GET', '/api/dashboard/webhooks')).status).toBe(401);
    expect((await visitor.call('POST', '/api/dashboard/webhooks/deliveries/whd_abc/resend', { json: {} })).status).toBe(401);
    const dashboard = await owner(shop);
    expect((await dashboard.call('POST', '/api/dashboard/webhooks/deliveries/not-a-delivery/resend', { json: {} })).status).toBe(400);
    const unknown = await dashboard.call('POST', '/api/dashboard/webhooks/deliveries/whd_doesnotexist/resend', { json: {} });
    expect({ status: unknown.status, code: unknown.body.error.code }).toEqual({ status: 404, code: 'delivery_not_found' });
  });

  it('runs without webhooks when the vault refuses its URL, and the dashboard says so', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant, { webhookUrl: 'http://10.0.0.1/webhooks/tessera' });
    expect(await endpointsOf(merchant)).toEqual([]);
    expect(readFileSync(shop.logFile, 'utf8')).toContain('the webhook endpoint could not be registered');
    const listed = await (await owner(shop)).call('GET', '/api/dashboard/webhooks');
    expect(listed.body).toMatchObject({ endpoint: null, deliveries: [], problem: 'not_registered' });
    // Nothing can be verified without a secret: refused, stored nowhere.
    const refused = await postWebhook(shop, '{}', { 'webhook-id': 'evt_x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,abc' });
    expect(refused.status).toBe(503);
    expect((await buy(shop, merchant)).status).toBe('captured');
  });

  it('never puts the webhook secret or an event’s body in an answer to a page, its database or its log', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const { secret } = savedEndpoint(shop);
    await buy(shop, merchant);
    await until('the purchase’s events', () => storedEvents(shop), (events) => events.length === 2);
    const dashboard = await owner(shop);
    for (const path of ['/api/dashboard', '/api/dashboard/webhooks', '/api/config']) {
      const answer = await dashboard.call('GET', path);
      expect(answer.status).toBe(200);
      expect(answer.text).not.toMatch(WHSEC);
    }
    const dumps = await dumpTables(async (sql) => (await shop.db.query<Record<string, unknown>>(sql)).rows);
    expect(dumps.map((dump) => dump.table)).toContain('webhook_events');
    const values = dumps.flatMap((dump) => dump.values.map((value) => (typeof value === 'string' ? value : Buffer.from(value).toString('latin1'))));
    expect(values.filter((value) => WHSEC.test(value) || value.includes(secret))).toEqual([]);

    const log = readFileSync(shop.logFile, 'utf8');
    expect(log).not.toMatch(WHSEC);
    expect(log).not.toContain(secret.slice(6));
    const received = log
      .split('\n')
      .filter((line) => line.includes('"msg":"webhook event received"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(received).toHaveLength(2);
    for (const line of received) expect(Object.keys(line).sort()).toEqual(['duplicate', 'effect', 'hostname', 'level', 'msg', 'pid', 'time', 'type', 'webhook_event']);
    expect(log).not.toContain('"object":"event"');
    expect(log).not.toContain('"object":"payment"');
  });
});
