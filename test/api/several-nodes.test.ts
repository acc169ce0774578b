/**
 * Two vault processes on one PostgreSQL behave as one vault (api.md,
 * "Several vault nodes"): the session cap, the rate limits, the card-testing
 * limits and the failed-authentication throttle count across both; racing
 * requests on the two nodes make one token, one payment, one effect per
 * Idempotency-Key; a merchant's settings changed through one node apply on
 * the other within a second.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, apiFrom, createMerchant, openSession, type ApiResponse, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, SANDBOX_CARDS } from '../support/cards.ts';
import { windowWithSecondsLeft } from '../support/clock-window.ts';
import { encryptMany } from '../support/many.ts';
import { startVaultNodes, type VaultNodes } from '../support/vault-nodes.ts';
import { newTestDatabase, storageKinds } from '../support/vault.ts';

const onPostgres = storageKinds().includes('postgres');

function expectRateLimited(response: ApiResponse, why: string): void {
  expect(response.status, `${why}: ${response.text}`).toBe(429);
  expect(response.body.error.code).toBe('rate_limited');
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

describe.runIf(onPostgres)('two vault nodes on one PostgreSQL', () => {
  let cluster: VaultNodes;
  let a: string;
  let b: string;

  beforeAll(async () => {
    cluster = await startVaultNodes({ count: 2, name: 'two-nodes', databaseUrl: await newTestDatabase() });
    [a, b] = cluster.nodes.map((node) => node.url) as [string, string];
  });
  afterAll(() => cluster?.close());

  const merchant = (options: { uniqueTokens?: boolean } = {}) => createMerchant({ url: a, adminKey: cluster.adminKey }, options);

  it('lets one card-fields session make 20 tokens in all when its tokenizations race on both nodes', async () => {
    const shop = await merchant();
    const session = await openSession(a, shop);
    const cards = await encryptMany(a, Array.from({ length: 30 }, () => cardPlaintext()));
    const answers = await Promise.all(
      cards.map((card, i) => api(i % 2 === 0 ? a : b, 'POST', '/v1/tokens', { json: { key: shop.publishableKey, session, card } })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201), statuses.join(',')).toHaveLength(20);
    for (const refused of answers.filter((answer) => answer.status !== 201)) expectRateLimited(refused, 'the 21st token of a session');
    const tokens = await api(b, 'GET', '/v1/tokens?limit=100', { key: shop.secretKey });
    expect(tokens.body.data).toHaveLength(20);
  });

  it('makes one token of one card tokenized on both nodes at once for a merchant with unique tokens', async () => {
    const shop = await merchant({ uniqueTokens: true });
    const cards = await encryptMany(a, Array.from({ length: 10 }, () => cardPlaintext(CARDS.mastercard)));
    const answers = await Promise.all(cards.map((card, i) => api(i % 2 === 0 ? a : b, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((answer) => answer.body.token)).size).toBe(1);
    const tokens = await api(b, 'GET', '/v1/tokens?limit=100', { key: shop.secretKey });
    expect(tokens.body.data.map((token: { token: string }) => token.token)).toEqual([answers[0]!.body.token]);
  });

  it('does the work of one Idempotency-Key once when it is sent to both nodes at once', async () => {
    const shop = await merchant();
    const [card] = await encryptMany(a, [cardPlaintext()]);
    const saved = await api(a, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card, reusable: true } });
    expect(saved.status).toBe(201);
    const payment = { token: saved.body.token, amount: 1250, currency: 'EUR', capture: true, reference: 'race-one-key' };
    const send = (url: string) => api(url, 'POST', '/v1/payments', { key: shop.secretKey, json: payment, headers: { 'Idempotency-Key': 'race-key-1' } });

    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => send(i % 2 === 0 ? a : b)));
    for (const answer of answers) expect([201, 409], answer.text).toContain(answer.status);
    const made = answers.filter((answer) => answer.status === 201);
    expect(made.length).toBeGreaterThanOrEqual(1);
    for (const busy of answers.filter((answer) => answer.status === 409)) expect(busy.body.error.code).toBe('idempotency_in_flight');
    expect(new Set(made.map((answer) => answer.body.id)).size).toBe(1);
    // Sent again afterwards, to either node: the same payment, replayed.
    const replayed = await send(b);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body.id).toBe(made[0]!.body.id);
    const listed = await api(a, 'GET', '/v1/payments?reference=race-one-key', { key: shop.secretKey });
    expect(listed.body.data).toHaveLength(1);
  });

  it('charges a single-use token once when it is charged on both nodes at once', async () => {
    const shop = await merchant();
    const session = await openSession(a, shop);
    const [card] = await encryptMany(a, [cardPlaintext()]);
    const single = await api(a, 'POST', '/v1/tokens', { json: { key: shop.publishableKey, session, card } });
    expect(single.status).toBe(201);
    expect(single.body.reusable).toBe(false);
    const charge = (url: string, i: number) =>
      api(url, 'POST', '/v1/payments', {
        key: shop.secretKey,
        json: { token: single.body.token, amount: 990, currency: 'EUR', capture: true, reference: 'race-single-use' },
        headers: { 'Idempotency-Key': `race-single-${i}` },
      });

    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => charge(i % 2 === 0 ? a : b, i)));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201), statuses.join(',')).toHaveLength(1);
    for (const refused of answers.filter((answer) => answer.status !== 201)) {
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body.error.code).toBe('token_used');
    }
    const listed = await api(b, 'GET', '/v1/payments?reference=race-single-use', { key: shop.secretKey });
    expect(listed.body.data.map((payment: { status: string }) => payment.status)).toEqual(['captured']);
  });

  it("applies a merchant's settings changed through one node on the other within a second", async () => {
    const shop = await merchant();
    const openFor = (url: string, origin: string) => api(url, 'POST', '/v1/sessions', { json: { key: shop.publishableKey, parent_origin: origin } });
    // Node b has the merchant cached, as it would under traffic.
    expect((await openFor(b, 'https://shop.example')).status).toBe(201);
    expect((await openFor(b, 'https://new.example')).status).toBe(403);

    const changed = await api(a, 'PATCH', '/v1/merchant', { key: shop.secretKey, json: { allowed_origins: ['https://new.example'] } });
    expect(changed.status).toBe(200);
    const since = Date.now();
    await vi.waitFor(async () => expect((await openFor(b, 'https://new.example')).status).toBe(201), { timeout: 1000, interval: 20 });
    expect(Date.now() - since).toBeLessThanOrEqual(1000);
    expect((await openFor(b, 'https://shop.example')).status).toBe(403);
  });

  it('stops a secret key rolled with no grace on the other node within a second', async () => {
    const shop = await merchant();
    expect((await api(b, 'GET', '/v1/merchant', { key: shop.secretKey })).status).toBe(200);
    const rolled = await api(a, 'POST', '/v1/merchant/keys/roll', { key: shop.secretKey, json: { expires_in: 0 } });
    expect(rolled.status, rolled.text).toBe(201);
    const since = Date.now();
    await vi.waitFor(async () => expect((await api(b, 'GET', '/v1/merchant', { key: shop.secretKey })).status).toBe(401), { timeout: 1000, interval: 20 });
    expect(Date.now() - since).toBeLessThanOrEqual(1000);
    expect((await api(b, 'GET', '/v1/merchant', { key: rolled.body.secret_key })).status).toBe(200);
  });
});

describe.runIf(onPostgres)('the limits of two vault nodes on one PostgreSQL', () => {
  const PER_IP = 4;
  const PER_KEY = 6;
  const AUTH_FAILURES = 5;
  const DECLINES_PER_CARD = 2;
  let cluster: VaultNodes;
  let a: string;
  let b: string;
  let shop: TestMerchant;

  beforeAll(async () => {
    cluster = await startVaultNodes({
      count: 2,
      name: 'two-nodes-limits',
      databaseUrl: await newTestDatabase(),
      env: {
        TESSERA_RATE_LIMIT_PER_IP: String(PER_IP),
        TESSERA_RATE_LIMIT_PER_KEY: String(PER_KEY),
        TESSERA_AUTH_FAILURES_PER_IP: String(AUTH_FAILURES),
        TESSERA_DECLINES_PER_CARD: String(DECLINES_PER_CARD),
      },
    });
    [a, b] = cluster.nodes.map((node) => node.url) as [string, string];
    shop = await createMerchant({ url: a, adminKey: cluster.adminKey });
  });
  afterAll(() => cluster?.close());

  const session = (url: string, from: string, merchant = shop) =>
    apiFrom(from, url, 'POST', '/v1/sessions', { json: { key: merchant.publishableKey, parent_origin: merchant.allowedOrigins[0] } });

  it('holds the per-IP limit of the card-fields endpoints across both nodes', async () => {
    await windowWithSecondsLeft(5);
    const from = '127.0.0.2';
    const answers: ApiResponse[] = [];
    for (let i = 0; i < PER_IP; i++) answers.push(await session(i % 2 === 0 ? a : b, from));
    expect(answers.map((answer) => answer.status)).toEqual(Array(PER_IP).fill(201));
    expectRateLimited(await session(a, from), 'node a, past the limit');
    expectRateLimited(await session(b, from), 'node b, past the limit');
    expect((await session(b, '127.0.0.3')).status).toBe(201);
  });

  it('holds the per-key limit of the card-fields endpoints across both nodes', async () => {
    const other = await createMerchant({ url: b, adminKey: cluster.adminKey }, { name: 'Key Limited' });
    await windowWithSecondsLeft(5);
    const answers = await Promise.all(Array.from({ length: PER_KEY + 4 }, (_, i) => session(i % 2 === 0 ? a : b, `127.0.1.${i + 1}`, other)));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201), statuses.join(',')).toHaveLength(PER_KEY);
    for (const refused of answers.filter((answer) => answer.status !== 201)) expectRateLimited(refused, 'past the per-key limit');
  });

  it('throttles an address that fails authentication on both nodes after the limit in all, and writes the limit of entries and one throttled entry', async () => {
    const from = '127.0.0.4';
    const failures: number[] = [];
    for (let i = 0; i < AUTH_FAILURES; i++) failures.push((await apiFrom(from, i % 2 === 0 ? a : b, 'GET', '/v1/tokens', { key: 'sk_test_unknownunknownunknown' })).status);
    expect(failures).toEqual(Array(AUTH_FAILURES).fill(401));
    // Each node refuses it now, before looking at the key: a valid one too.
    expectRateLimited(await apiFrom(from, b, 'GET', '/v1/merchant', { key: shop.secretKey }), 'node b, a valid key from a throttled address');
    expectRateLimited(await apiFrom(from, a, 'GET', '/v1/merchant', { key: shop.secretKey }), 'node a, a valid key from a throttled address');
    expect((await apiFrom('127.0.0.5', a, 'GET', '/v1/merchant', { key: shop.secretKey })).status).toBe(200);

    const { Client } = await import('pg');
    const client = new Client({ connectionString: cluster.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ action: string; n: number }>(
        `select action, count(*)::int as n from audit_events where client_ip = $1 group by action order by action`,
        [from],
      );
      expect(rows).toEqual([
        { action: 'auth.failed', n: AUTH_FAILURES },
        { action: 'auth.throttled', n: 1 },
      ]);
    } finally {
      await client.end();
    }
  });

  it('counts the declines of one card on both nodes against one limit', async () => {
    const cards = await encryptMany(a, Array.from({ length: 3 }, () => cardPlaintext({ number: SANDBOX_CARDS.generic_decline, cvc: '079' })));
    const tokens: string[] = [];
    for (const card of cards) tokens.push((await api(a, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card, reusable: true } })).body.token);
    const pay = (url: string, token: string) => api(url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token, amount: 100, currency: 'EUR', capture: true } });

    expect((await pay(a, tokens[0]!)).status).toBe(402);
    expect((await pay(b, tokens[1]!)).status).toBe(402);
    expectRateLimited(await pay(a, tokens[2]!), 'node a, a third decline of the card');
    expectRateLimited(await pay(b, tokens[2]!), 'node b, a third decline of the card');
  });
});
