/**
 * Issue #8, item 6: "Failed authentication floods the audit log and records
 * no source: each bad `Authorization` writes a row, unthrottled; a
 * publishable key used as Bearer writes into that merchant's own log."
 *
 * The review's reproduction, replayed: bad keys sent again and again from one
 * address, a publishable key sent as Bearer, and a look at what the audit log
 * kept of them. Each client address is a loopback address of its own
 * (127.0.0.2, …), so the vault sees separate machines.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, apiFrom, createMerchant, openSession, type ApiResponse, type TestMerchant } from '../../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../../support/cards.ts';
import { encryptMany } from '../../support/many.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/** Failed authentications an address may make per minute in this file's vault. */
const LIMIT = 5;

interface AuditRow {
  merchant_id: string | null;
  action: string;
  outcome: string;
  code: string | null;
  actor: string;
  client_ip: string | null;
  request_id: string | null;
}

const unknownSecretKey = () => `sk_test_${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;

describe.each(storageKinds())('the audit log under a flood of failed authentication on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'audit-flood', env: { TESSERA_AUTH_FAILURES_PER_IP: String(LIMIT) } });
    shop = await createMerchant(vault, { name: 'Flooded Shop' });
  });
  afterAll(() => vault?.close());

  const rowsFrom = async (address: string) =>
    (
      await vault.vault.db.query<AuditRow>(
        `select merchant_id, action, outcome, code, actor, client_ip, request_id from audit_events where client_ip = $1 order by seq`,
        [address],
      )
    ).rows;

  /** The review's bad requests, in turn: unknown secret keys, a malformed header, a wrong admin key, a publishable key as Bearer. */
  const badRequest = (from: string, i: number): Promise<ApiResponse> => {
    switch (i % 4) {
      case 0:
        return apiFrom(from, vault.url, 'GET', '/v1/tokens', { key: unknownSecretKey() });
      case 1:
        return apiFrom(from, vault.url, 'GET', '/v1/merchant', { authorization: 'Basic c2hvcDpwYXNzd29yZA==' });
      case 2:
        return apiFrom(from, vault.url, 'GET', '/v1/merchants', { key: `admin_${randomBytes(24).toString('hex')}` });
      default:
        return apiFrom(from, vault.url, 'GET', '/v1/events', { key: shop.publishableKey });
    }
  };

  it('writes at most the limit of auth.failed entries and one auth.throttled per address, and answers the rest 429 rate_limited with Retry-After', async () => {
    const from = '127.0.0.2';
    const responses: ApiResponse[] = [];
    for (let i = 0; i < 60; i++) responses.push(await badRequest(from, i));

    expect(responses.slice(0, LIMIT).map((r) => r.status)).toEqual([401, 401, 401, 403, 401]);
    for (const refused of responses.slice(LIMIT)) {
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ type: 'rate_limit', code: 'rate_limited' });
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    const rows = await rowsFrom(from);
    expect(rows.map((r) => [r.action, r.code])).toEqual([
      ['auth.failed', 'unauthenticated'],
      ['auth.failed', 'unauthenticated'],
      ['auth.failed', 'unauthenticated'],
      ['auth.failed', 'secret_key_required'],
      ['auth.failed', 'unauthenticated'],
      ['auth.throttled', 'rate_limited'],
    ]);
    for (const row of rows) expect(row).toMatchObject({ merchant_id: null, outcome: 'failed', client_ip: from });
  });

  it('refuses a throttled address before looking up its key, a valid secret key too, while other addresses are served', async () => {
    const from = '127.0.0.3';
    for (let i = 0; i < LIMIT; i++) expect((await badRequest(from, 0)).status).toBe(401);

    const valid = await apiFrom(from, vault.url, 'GET', '/v1/merchant', { key: shop.secretKey });
    expect(valid.status).toBe(429);
    expect(valid.body.error.code).toBe('rate_limited');
    const elsewhere = await apiFrom('127.0.0.4', vault.url, 'GET', '/v1/merchant', { key: shop.secretKey });
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.body.id).toBe(shop.id);
    // The refused valid request did nothing: no merchant.read for it in the merchant's log.
    expect((await rowsFrom(from)).filter((r) => r.action === 'merchant.read')).toEqual([]);
  });

  it('writes a bounded number of entries when the failures arrive all at once', async () => {
    const from = '127.0.0.5';
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => badRequest(from, i)));
    expect(responses.every((r) => [401, 403, 429].includes(r.status))).toBe(true);
    expect(responses.filter((r) => r.status === 429).length).toBeGreaterThan(0);
    const rows = await rowsFrom(from);
    expect(rows.filter((r) => r.action === 'auth.failed').length).toBeLessThanOrEqual(LIMIT);
    expect(rows.filter((r) => r.action === 'auth.throttled')).toHaveLength(1);
    expect(rows.length).toBeLessThanOrEqual(LIMIT + 1);
  });

  it("records a publishable key sent as Bearer (403 secret_key_required) in the operator's log, not in its merchant's", async () => {
    const from = '127.0.0.6';
    const before = (await api(vault.url, 'GET', '/v1/events?limit=100', { key: shop.secretKey })).body.data as { id: string }[];
    const refused = await apiFrom(from, vault.url, 'GET', '/v1/tokens', { key: shop.publishableKey });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('secret_key_required');

    const after = (await api(vault.url, 'GET', '/v1/events?limit=100', { key: shop.secretKey })).body.data as { id: string; action: string }[];
    expect(after.map((e) => e.id)).toEqual(before.map((e) => e.id));
    expect(after.some((e) => e.action.startsWith('auth.'))).toBe(false);
    expect(await rowsFrom(from)).toEqual([
      {
        merchant_id: null,
        action: 'auth.failed',
        outcome: 'failed',
        code: 'secret_key_required',
        actor: shop.publishableKey,
        client_ip: from,
        request_id: refused.headers.get('request-id'),
      },
    ]);
  });

  it('records the client address and the request id on every entry, those written inside the SQL functions included', async () => {
    const from = '127.0.0.7';
    const secret = { key: shop.secretKey };
    const session = await openSession(vault.url, shop);
    const calls: [string, ApiResponse][] = [];
    const call = async (name: string, response: Promise<ApiResponse>) => {
      const answered = await response;
      calls.push([name, answered]);
      return answered;
    };

    const fields = await call(
      'tokens from the card fields (tessera_create_token)',
      apiFrom(from, vault.url, 'POST', '/v1/tokens', { json: { key: shop.publishableKey, session, card: await encryptCard(vault.url, cardPlaintext()) } }),
    );
    const server = await call(
      'a verified token (tessera_create_token, two entries)',
      apiFrom(from, vault.url, 'POST', '/v1/tokens', { ...secret, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.mastercard)), reusable: true, verify: true } }),
    );
    const [card] = await encryptMany(vault.url, [cardPlaintext(CARDS.visa, { exp_month: 3 })]);
    await call(
      'a bulk update, one item applied and one refused (tessera_update_token, and the refusals insert)',
      apiFrom(from, vault.url, 'PATCH', '/v1/tokens', { ...secret, json: { tokens: [{ token: server.body.token, card }, { token: 'tok_missing000000000000000', reusable: true }] } }),
    );
    await call('a token read', apiFrom(from, vault.url, 'GET', `/v1/tokens/${server.body.token}`, secret));
    await call('a failed read (the error handler)', apiFrom(from, vault.url, 'GET', '/v1/tokens/tok_missing000000000000001', secret));
    await call(
      'a payment (the payment service)',
      apiFrom(from, vault.url, 'POST', '/v1/payments', { ...secret, json: { token: server.body.token, amount: 500, currency: 'EUR', capture: true } }),
    );
    await call('a deletion (its statement writes the entry)', apiFrom(from, vault.url, 'DELETE', `/v1/tokens/${fields.body.token}`, secret));
    await call('a merchant update', apiFrom(from, vault.url, 'PATCH', '/v1/merchant', { ...secret, json: { unique_tokens: false } }));
    await call('a failed authentication (the operator log)', apiFrom(from, vault.url, 'GET', '/v1/tokens', { key: unknownSecretKey() }));

    const rows = await rowsFrom(from);
    for (const [name, response] of calls) {
      const requestId = response.headers.get('request-id');
      expect(requestId, name).toMatch(/^req_[0-9a-f]{32}$/);
      expect(rows.filter((r) => r.request_id === requestId).length, name).toBeGreaterThan(0);
    }
    expect(rows.filter((r) => r.request_id === server.headers.get('request-id')).map((r) => r.action)).toEqual(['token.created', 'token.verified']);
    expect(rows.length).toBeGreaterThanOrEqual(calls.length + 3);

    const { rows: unsourced } = await vault.vault.db.query<{ n: number }>(
      'select count(*)::int as n from audit_events where client_ip is null or request_id is null',
    );
    expect(unsourced[0]!.n).toBe(0);

    // The merchant sees them in its own events, so it can match an entry to a request its server made.
    const events = await api(vault.url, 'GET', `/v1/events?token=${server.body.token}`, secret);
    expect(events.body.data.at(-1)).toMatchObject({ action: 'token.created', client_ip: from, request_id: server.headers.get('request-id') });
  });
});
