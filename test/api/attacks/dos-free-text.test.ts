import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createMerchant, openSession, type ApiResponse, type TestMerchant } from '../../support/api.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/**
 * Issue #8, item 1: one anonymous `POST /v1/tokens` with 65 KB of "0" in
 * `customer` blocked the vault for ~0.8 s, before any key check — the
 * card-number scan ran on a value `.max(255)` had already refused, and
 * called credit-card-type for every Luhn-valid window.
 *
 * This is the one API test that asserts time, because the issue's own
 * acceptance criterion is a time: every oversized free-text value answers
 * 4xx in under 20 ms of server time (the vault's own request log `ms`), and
 * the event loop (the vault runs in this process) never stalls for 50 ms.
 * The vulnerable code took 0.3–3 s on every attempt, whatever the machine
 * was doing. On a machine shared with other work, wall-clock time also
 * counts the moments this process is not scheduled, so a case passes when
 * one of up to ten attempts meets both bounds: other work can slow some
 * attempts, never make the vault's own work cheap.
 */
const SERVER_MS = 20;
const EVENT_LOOP_MS = 50;
const ATTEMPTS = 10;

/** Bodies are limited to 64 KiB (413); 60 KiB fits, and is parsed. */
const IN_BODY = 60 * 1024;
/** Over the body limit everywhere but `PATCH /v1/tokens` (4 MiB). */
const OVER_BODY = 64 * 1024;
/** A URL or header value Node still accepts (its header limit is 16 KiB in all). */
const IN_URL = 8 * 1024;

const ZEROS = (length: number) => '0'.repeat(length);
/** Luhn-valid card numbers at every fourth offset, a brand at each. */
const FOURS = (length: number) => '4242'.repeat(Math.ceil(length / 4)).slice(0, length);

interface Timed {
  status: number;
  serverMs: number | undefined;
  eventLoopMs: number;
}

/**
 * Resolves once this process's event loop (the vault's too) has turned at
 * least every 20 ms for 250 ms in a row: start-up work (module loading, the
 * first compilations) is done. On a machine too busy for that it gives up
 * waiting after 10 s: each case then still has its ten attempts.
 */
function eventLoopQuiet(): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    let last = started;
    let quietSince = started;
    const ticker = setInterval(() => {
      const now = performance.now();
      if (now - last > 20) quietSince = now;
      last = now;
      if (now - quietSince >= 250 || now - started >= 10_000) {
        clearInterval(ticker);
        resolve();
      }
    }, 1);
  });
}

/** A refusal: any 4xx, or exactly `status`. */
const refused = (status?: number) => (response: ApiResponse) => {
  expect(response.status, response.text.slice(0, 200)).toBeGreaterThanOrEqual(400);
  expect(response.status, response.text.slice(0, 200)).toBeLessThan(500);
  if (status !== undefined) expect(response.status).toBe(status);
};

describe.each(storageKinds())('free text costs the vault little, however long, on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let session: string;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'attack-dos' });
    shop = await createMerchant(vault);
    session = await openSession(vault.url, shop);
    // Start-up work (module loading, the first compilations) is not what is measured: let it finish first.
    for (let i = 0; i < 20; i++) await api(vault.url, 'POST', '/v1/tokens', { json: { key: 'pk_test_x', session: 's', card: 'c', customer: 'cus_1' } });
    await eventLoopQuiet();
  });
  afterAll(() => vault?.close());

  /** The request's `ms` from the vault's access log, found by its Request-Id. */
  async function serverMs(response: ApiResponse): Promise<number | undefined> {
    const id = response.headers.get('request-id');
    if (id === null) return undefined;
    // The access line is written on the response's `finish`, which may come just after the client has read it.
    return vi.waitFor(
      () => {
        for (const line of readFileSync(vault.logFile, 'utf8').split('\n')) {
          if (!line.includes(id)) continue;
          const entry = JSON.parse(line) as { request_id?: string; msg?: string; ms?: number };
          if (entry.request_id === id && entry.msg === 'request') return entry.ms;
        }
        throw new Error(`no access log line for ${id}`);
      },
      { timeout: 2_000, interval: 10 },
    );
  }

  /**
   * The longest stall of this process's event loop (the vault's too) while
   * `send` runs: the widest gap between ticks of a 1 ms interval timer.
   * `perf_hooks.monitorEventLoopDelay` was tried first, but a histogram
   * enabled for a window this short missed a 200 ms stall about one time in
   * three; a plain ticker never did.
   */
  async function timed(send: () => Promise<ApiResponse>): Promise<Timed & { response: ApiResponse }> {
    let last = performance.now();
    let widest = 0;
    let onTick = () => {};
    const ticker = setInterval(() => {
      const now = performance.now();
      widest = Math.max(widest, now - last);
      last = now;
      onTick();
    }, 1);
    try {
      const response = await send();
      // One more tick measures a stall that ended with the response.
      await new Promise<void>((resolve) => (onTick = resolve));
      widest = Math.max(widest, performance.now() - last);
      return { response, status: response.status, serverMs: await serverMs(response), eventLoopMs: widest };
    } finally {
      clearInterval(ticker);
    }
  }

  /**
   * Sends until one attempt meets both bounds (or all fail), checking every
   * answer. `serverMs` is undefined when Node's HTTP parser answered (431)
   * before the vault saw the request.
   */
  async function expectCheap(send: () => Promise<ApiResponse>, check: (response: ApiResponse) => void = refused()) {
    const attempts: Timed[] = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const { response, ...attempt } = await timed(send);
      attempts.push(attempt);
      check(response);
      if ((attempt.serverMs ?? 0) < SERVER_MS && attempt.eventLoopMs < EVENT_LOOP_MS) return;
    }
    expect.fail(`every attempt was slow: ${JSON.stringify(attempts)}`);
  }

  const patterns = [
    ['zeros', ZEROS],
    ['4242… repeated', FOURS],
  ] as const;

  type BodyCase = [name: string, send: (text: string) => Promise<ApiResponse>];

  const bodyCases = (): BodyCase[] => {
    const fields = (json: Record<string, unknown>) => api(vault.url, 'POST', '/v1/tokens', { json });
    const server = (json: Record<string, unknown>) => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json });
    const pay = (json: Record<string, unknown>) =>
      api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: 'tok_x', amount: 100, currency: 'EUR', ...json } });
    const newMerchant = (json: Record<string, unknown>) =>
      api(vault.url, 'POST', '/v1/merchants', { key: vault.adminKey, json: { name: 'Shop', allowed_origins: [], ...json } });
    const updateMerchant = (json: Record<string, unknown>) => api(vault.url, 'PATCH', '/v1/merchant', { key: shop.secretKey, json });
    return [
      // The reproduction: an anonymous request with an unknown key.
      ['POST /v1/tokens (fields, unknown key) customer', (text) => fields({ key: 'pk_test_x', session: 's', card: 'c', customer: text })],
      ['POST /v1/tokens (fields) customer', (text) => fields({ key: shop.publishableKey, session, card: 'c', customer: text })],
      ['POST /v1/tokens (fields) key', (text) => fields({ key: text, session, card: 'c' })],
      ['POST /v1/tokens (fields) session', (text) => fields({ key: shop.publishableKey, session: text, card: 'c' })],
      ['POST /v1/tokens (fields) card', (text) => fields({ key: shop.publishableKey, session, card: text })],
      ['POST /v1/tokens (server) customer', (text) => server({ card: 'c', customer: text })],
      ['POST /v1/tokens (server) value', (text) => server({ card: 'c', value: text })],
      ['POST /v1/tokens (server) card', (text) => server({ card: text })],
      ['POST /v1/payments token', (text) => pay({ token: text })],
      ['POST /v1/payments reference', (text) => pay({ reference: text })],
      ['POST /v1/payments currency', (text) => pay({ currency: text })],
      ['POST /v1/payments cvc', (text) => pay({ cvc: text })],
      ['POST /v1/payments/{id}/refunds body key', (text) => api(vault.url, 'POST', '/v1/payments/pay_x/refunds', { key: shop.secretKey, json: { [text]: 1 } })],
      ['POST /v1/sessions key', (text) => api(vault.url, 'POST', '/v1/sessions', { json: { key: text, parent_origin: 'https://shop.example' } })],
      ['POST /v1/sessions parent_origin', (text) => api(vault.url, 'POST', '/v1/sessions', { json: { key: shop.publishableKey, parent_origin: text } })],
      ['POST /v1/merchants name', (text) => newMerchant({ name: text })],
      ['POST /v1/merchants allowed_origins', (text) => newMerchant({ allowed_origins: [text] })],
      ['POST /v1/merchants webhook_url', (text) => newMerchant({ webhook_url: text })],
      ['PATCH /v1/merchant name', (text) => updateMerchant({ name: text })],
      ['PATCH /v1/merchant allowed_origins', (text) => updateMerchant({ allowed_origins: [text] })],
      ['PATCH /v1/merchant webhook_url', (text) => updateMerchant({ webhook_url: text })],
      ['POST /v1/keys/rotate unknown parameter', (text) => api(vault.url, 'POST', '/v1/keys/rotate', { key: vault.adminKey, json: { [text]: 1 } })],
    ];
  };

  describe.each(patterns)('a JSON body with %s', (_pattern, make) => {
    it.each(bodyCases().map(([name]) => [name]))('%s: 60 KiB (parsed) and 64 KiB (over the limit) answer 4xx at once', async (name) => {
      const send = bodyCases().find(([n]) => n === name)![1];
      await expectCheap(() => send(make(IN_BODY)));
      await expectCheap(() => send(make(OVER_BODY)), refused(413));
    });

    it('PATCH /v1/tokens (4 MiB limit): 64 KiB and 60 KiB item token and card answer at once, item by item', async () => {
      const patch = (item: Record<string, unknown>) => api(vault.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json: { tokens: [item] } });
      // The envelope is fine, so the answer is 200 with the item refused.
      const itemRefused = (response: ApiResponse) => {
        expect(response.status).toBe(200);
        expect(response.body.results[0]).toMatchObject({ ok: false, error: { code: expect.any(String) } });
      };
      for (const size of [OVER_BODY, IN_BODY]) {
        await expectCheap(() => patch({ token: make(size), reusable: true }), itemRefused);
        await expectCheap(() => patch({ token: 'tok_x', card: make(size) }), itemRefused);
      }
    });
  });

  type UrlCase = [name: string, send: (text: string) => Promise<ApiResponse>];
  const urlCases = (): UrlCase[] => {
    const get = (path: string, key: string = shop.secretKey) => api(vault.url, 'GET', path, { key });
    return [
      ['GET /v1/tokens?customer=', (text) => get(`/v1/tokens?customer=${text}`)],
      ['GET /v1/tokens?fingerprint=', (text) => get(`/v1/tokens?fingerprint=${text}`)],
      ['GET /v1/tokens?starting_after=', (text) => get(`/v1/tokens?starting_after=${text}`)],
      ['GET /v1/tokens/{token}', (text) => get(`/v1/tokens/${text}`)],
      ['DELETE /v1/tokens/{token}', (text) => api(vault.url, 'DELETE', `/v1/tokens/${text}`, { key: shop.secretKey })],
      ['POST /v1/tokens/{token}/verify', (text) => api(vault.url, 'POST', `/v1/tokens/${text}/verify`, { key: shop.secretKey })],
      ['GET /v1/payments?reference=', (text) => get(`/v1/payments?reference=${text}`)],
      ['GET /v1/payments?token=', (text) => get(`/v1/payments?token=${text}`)],
      ['GET /v1/payments?starting_after=', (text) => get(`/v1/payments?starting_after=${text}`)],
      ['GET /v1/payments/{id}', (text) => get(`/v1/payments/${text}`)],
      ['POST /v1/payments/{id}/capture', (text) => api(vault.url, 'POST', `/v1/payments/${text}/capture`, { key: shop.secretKey, json: {} })],
      ['GET /v1/events?token=', (text) => get(`/v1/events?token=${text}`)],
      ['GET /v1/events?payment=', (text) => get(`/v1/events?payment=${text}`)],
      ['GET /v1/merchants?starting_after=', (text) => get(`/v1/merchants?starting_after=${text}`, vault.adminKey)],
      ['GET /v1/fields/status?key=', (text) => api(vault.url, 'GET', `/v1/fields/status?key=${text}`)],
      [
        'Idempotency-Key header',
        (text) => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: 'c' }, headers: { 'Idempotency-Key': text } }),
      ],
    ];
  };

  describe.each(patterns)('a URL or header with %s', (_pattern, make) => {
    it.each(urlCases().map(([name]) => [name]))('%s: 8 KiB (parsed) and 64 KiB (over the header limit) answer 4xx at once', async (name) => {
      const send = urlCases().find(([n]) => n === name)![1];
      await expectCheap(() => send(make(IN_URL)));
      await expectCheap(() => send(make(OVER_BODY)), refused(431));
    });
  });
});
