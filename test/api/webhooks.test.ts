/**
 * Events and webhooks (api.md, "Events and webhooks"): endpoints, deliveries
 * with Standard Webhooks signatures, retries on the schedule, Retry-After,
 * 410, manual retry, secret rotation — against a real vault and a merchant
 * endpoint on 127.0.0.1.
 */
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueJob } from '../../server/jobs/index.ts';
import { claimJobs } from '../../server/jobs/queue.ts';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startMerchantEndpoint, type MerchantEndpoint } from '../support/merchant-endpoint.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('events and webhooks on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  const endpoints: MerchantEndpoint[] = [];

  beforeAll(async () => {
    vault = await startTestVault({
      storage,
      name: 'webhooks',
      env: { TESSERA_WEBHOOK_ALLOW_LOCAL: '1', TESSERA_WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,300ms' },
    });
  });
  afterEach(async () => {
    for (const endpoint of endpoints.splice(0)) await endpoint.close();
  });
  afterAll(() => vault?.close());

  async function merchantWithEndpoint(events: string[] = ['*']) {
    shop = await createMerchant(vault, { name: 'Webhook Shop' });
    const receiver = await startMerchantEndpoint();
    endpoints.push(receiver);
    const created = await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: shop.secretKey, json: { url: receiver.url, events } });
    expect(created.status, created.text).toBe(201);
    return { receiver, endpoint: created.body as { id: string; secret: string } };
  }
  const tokenize = async (merchant = shop, card: { number: string; cvc: string } = CARDS.visa) =>
    api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(card)) } });

  it('makes an endpoint with a secret shown once, lists, reads, changes and deletes it', async () => {
    const { endpoint } = await merchantWithEndpoint(['payment.*']);
    expect(endpoint).toMatchObject({ object: 'webhook_endpoint', events: ['payment.*'], disabled: false, secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{40,}={0,2}$/) });
    const read = await api(vault.url, 'GET', `/v1/webhook-endpoints/${endpoint.id}`, { key: shop.secretKey });
    expect(read.body).toMatchObject({ id: endpoint.id, events: ['payment.*'] });
    expect(read.text).not.toContain('whsec_');
    const listed = await api(vault.url, 'GET', '/v1/webhook-endpoints', { key: shop.secretKey });
    expect(listed.body.data.map((e: { id: string }) => e.id)).toEqual([endpoint.id]);
    const changed = await api(vault.url, 'PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { key: shop.secretKey, json: { events: ['token.created'], disabled: true } });
    expect(changed.body).toMatchObject({ events: ['token.created'], disabled: true, disabled_reason: 'merchant' });
    const other = await createMerchant(vault, { name: 'Other' });
    expect((await api(vault.url, 'GET', `/v1/webhook-endpoints/${endpoint.id}`, { key: other.secretKey })).status).toBe(404);
    expect((await api(vault.url, 'DELETE', `/v1/webhook-endpoints/${endpoint.id}`, { key: shop.secretKey })).body).toEqual({
      id: endpoint.id,
      object: 'webhook_endpoint',
      deleted: true,
    });
    expect((await api(vault.url, 'GET', `/v1/webhook-endpoints/${endpoint.id}`, { key: shop.secretKey })).status).toBe(404);
  });

  it.each([
    ['https://169.254.169.254/latest', 422, 'webhook_url_not_allowed'],
    ['https://10.0.0.1/hooks', 422, 'webhook_url_not_allowed'],
    ['http://shop.example/hooks', 422, 'webhook_url_not_allowed'],
  ])('refuses the endpoint url %s', async (url, status, code) => {
    const merchant = await createMerchant(vault, { name: 'SSRF Shop' });
    const refused = await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: merchant.secretKey, json: { url, events: ['*'] } });
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status, code });
  });

  it('refuses unknown event types and more than 16 endpoints', async () => {
    const merchant = await createMerchant(vault, { name: 'Limits Shop' });
    const unknown = await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: merchant.secretKey, json: { url: 'http://127.0.0.1:9/x', events: ['payments.*'] } });
    expect({ status: unknown.status, param: unknown.body.error.param }).toEqual({ status: 400, param: 'events.0' });
    for (let i = 0; i < 16; i++) {
      expect((await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: merchant.secretKey, json: { url: `http://127.0.0.1:9/${i}`, events: ['*'] } })).status).toBe(201);
    }
    const seventeenth = await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: merchant.secretKey, json: { url: 'http://127.0.0.1:9/x', events: ['*'] } });
    expect(seventeenth.body.error.code).toBe('too_many_webhook_endpoints');
  });

  it('sends each event once, signed by the Standard Webhooks rules, with the object as the change left it and no card data', async () => {
    const { receiver, endpoint } = await merchantWithEndpoint();
    const token = await tokenize();
    const paid = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: token.body.token, amount: 1200, currency: 'EUR' } });
    expect(paid.status).toBe(201);
    const received = await receiver.waitFor(3);
    const events = received.map((r) => JSON.parse(r.body) as { id: string; type: string; data: { object: Record<string, unknown> } });
    expect(events.map((e) => e.type).sort()).toEqual(['payment.authorized', 'payment.captured', 'token.created']);
    const webhook = new Webhook(endpoint.secret);
    for (const request of received) {
      expect(webhook.verify(request.body, request.headers as Record<string, string>)).toEqual(JSON.parse(request.body));
      expect(request.headers['webhook-id']).toBe(JSON.parse(request.body).id);
      expect(request.body).not.toContain(CARDS.visa.number);
    }
    const created = events.find((e) => e.type === 'token.created')!;
    expect(created.data.object).toMatchObject({ token: token.body.token, card: { brand: 'visa', last4: '4242' } });
    const captured = events.find((e) => e.type === 'payment.captured')!;
    expect(captured.data.object).toMatchObject({ id: paid.body.id, status: 'captured', amount_captured: 1200 });
    expect(events.find((e) => e.type === 'payment.authorized')!.data.object).toMatchObject({ id: paid.body.id, status: 'authorized' });

    // The audit log is the event log: the same ids, the same objects.
    const log = await api(vault.url, 'GET', '/v1/events?limit=20', { key: shop.secretKey });
    const logged = log.body.data.find((e: { id: string }) => e.id === created.id);
    expect(logged).toMatchObject({ type: 'token.created', action: 'token.created', data: { object: created.data.object } });
    // Reads stay audit-only.
    await api(vault.url, 'GET', `/v1/tokens/${token.body.token}`, { key: shop.secretKey });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received).toHaveLength(3);
  });

  it('sends only the events an endpoint subscribed to', async () => {
    const { receiver } = await merchantWithEndpoint(['token.*']);
    const token = await tokenize();
    await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: token.body.token, amount: 100, currency: 'EUR' } });
    await api(vault.url, 'DELETE', `/v1/tokens/${token.body.token}`, { key: shop.secretKey });
    const received = await receiver.waitFor(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.map((r) => JSON.parse(r.body).type)).toEqual(['token.created', 'token.deleted']);
  });

  it('retries on the schedule until a 2xx, keeps the same webhook-id, honours Retry-After, and logs every attempt', async () => {
    const { receiver, endpoint } = await merchantWithEndpoint(['token.created']);
    receiver.answer({ status: 500 }, { status: 503, headers: { 'retry-after': '1' } });
    await tokenize();
    const received = await receiver.waitFor(3);
    expect(new Set(received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    // The schedule says 200 ms after the second attempt; the endpoint asked for a second.
    expect(received[2]!.at - received[1]!.at).toBeGreaterThanOrEqual(950);
    const deliveries = await waitForDeliveries(endpoint.id, (d) => d[0]?.state === 'delivered');
    expect(deliveries[0]).toMatchObject({ event_type: 'token.created', state: 'delivered' });
    expect(deliveries[0].attempts.map((a: { status_code: number }) => a.status_code)).toEqual([500, 503, 200]);
  });

  it('fails a delivery once the schedule is spent, and sends it again when the merchant asks', async () => {
    const { receiver, endpoint } = await merchantWithEndpoint(['token.created']);
    receiver.answer({ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 });
    await tokenize();
    const failed = await waitForDeliveries(endpoint.id, (d) => d[0]?.state === 'failed');
    expect(failed[0].attempts).toHaveLength(4);
    const retried = await api(vault.url, 'POST', `/v1/webhook-deliveries/${failed[0].id}/retry`, { key: shop.secretKey, json: {} });
    expect(retried.status).toBe(202);
    const delivered = await waitForDeliveries(endpoint.id, (d) => d[0]?.state === 'delivered');
    expect(delivered[0].attempts.map((a: { status_code: number }) => a.status_code)).toEqual([500, 500, 500, 500, 200]);
    expect(receiver.received).toHaveLength(5);
  });

  it('disables an endpoint that answers 410, and sends it nothing more', async () => {
    const { receiver, endpoint } = await merchantWithEndpoint(['token.created']);
    receiver.answer({ status: 410 });
    await tokenize();
    await waitForDeliveries(endpoint.id, (d) => d[0]?.state === 'failed');
    const read = await api(vault.url, 'GET', `/v1/webhook-endpoints/${endpoint.id}`, { key: shop.secretKey });
    expect(read.body).toMatchObject({ disabled: true, disabled_reason: 'gone' });
    await tokenize(shop, CARDS.mastercard);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.received).toHaveLength(1);
  });

  it('signs with both secrets for a day after a rotation, each verifying on its own', async () => {
    const { receiver, endpoint } = await merchantWithEndpoint(['token.created']);
    const rotated = await api(vault.url, 'POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { key: shop.secretKey, json: {} });
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    await tokenize();
    const [request] = await receiver.waitFor(1);
    expect(String(request!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [endpoint.secret, rotated.body.secret]) {
      expect(() => new Webhook(secret).verify(request!.body, request!.headers as Record<string, string>)).not.toThrow();
    }
  });

  it('settles several deliveries in one statement, and writes nothing of one whose job’s claim is gone', async () => {
    const { endpoint } = await merchantWithEndpoint(['payment.captured']);
    expect((await tokenize(shop, CARDS.visa)).status).toBe(201);
    expect((await tokenize(shop, CARDS.mastercard)).status).toBe(201);
    const db = vault.vault.db;
    const { rows: events } = await db.query<{ id: string }>(`select id from audit_events where merchant_id = $1 and event_type = 'token.created'`, [shop.id]);
    // Deliveries and jobs of a kind no runner handles, claimed here, as a delivery job's run would hold them.
    const deliveries = ['whd_settlekept', 'whd_settlelost'];
    for (const [i, id] of deliveries.entries()) {
      await db.query(`insert into webhook_deliveries (id, merchant_id, endpoint_id, event_id, state) values ($1, $2, $3, $4, 'pending')`, [id, shop.id, endpoint.id, events[i]!.id]);
      await enqueueJob(db, { kind: 'test.settle', key: id, payload: { delivery: id } });
    }
    const claimed = await claimJobs(db, { kind: 'test.settle', limit: 2, owner: 'test', leaseMs: 60_000 });
    expect(claimed).toHaveLength(2);
    const claimOf = (id: string) => claimed.find((job) => job.key === id)!;
    const settlement = (id: string, claim: string) => ({
      delivery_id: id, endpoint_id: endpoint.id, state: 'delivered', attempt: 1, status_code: 200, latency_ms: 3, error: null,
      next_in_ms: null, disable_endpoint: false, job_id: claimOf(id).id, job_claim: claim,
    });
    const { rows } = await db.query<{ lost: string[] }>('select tessera_settle_deliveries($1::jsonb) as lost', [
      JSON.stringify([settlement('whd_settlekept', claimOf('whd_settlekept').claim), settlement('whd_settlelost', '00000000-0000-4000-8000-000000000000')]),
    ]);
    expect(rows[0]!.lost.map(String)).toEqual([claimOf('whd_settlelost').id]);
    const { rows: after } = await db.query<{ id: string; state: string; attempts: number; logged: number; job: string }>(
      `select d.id, d.state, d.attempts, (select count(*)::int from webhook_attempts a where a.delivery_id = d.id) as logged,
              (select state from jobs j where j.kind = 'test.settle' and j.key = d.id) as job
         from webhook_deliveries d where d.id = any($1::text[]) order by d.id`,
      [deliveries],
    );
    expect(after).toEqual([
      { id: 'whd_settlekept', state: 'delivered', attempts: 1, logged: 1, job: 'done' },
      { id: 'whd_settlelost', state: 'pending', attempts: 0, logged: 0, job: 'running' },
    ]);
  });

  async function waitForDeliveries(endpointId: string, done: (deliveries: any[]) => boolean, timeoutMs = 10_000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const page = await api(vault.url, 'GET', `/v1/webhook-endpoints/${endpointId}/deliveries`, { key: shop.secretKey });
      if (done(page.body.data)) return page.body.data;
      if (Date.now() > deadline) throw new Error(`deliveries did not settle: ${page.text}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});
