/**
 * Async batch tokenization (api.md, "Async batch tokenization"): a batch is
 * validated whole before its 202, its items are tokenized in the background
 * one by one in effect (unique tokens, decline duplicates, replays), an
 * item's failure is its result, results are paged by index, and completion
 * is a `token_batch.completed` event sent to the merchant's endpoints.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, fetchJwks, nextYear, type CardPlaintext, numberedCard } from '../support/cards.ts';
import { encryptMany } from '../support/many.ts';
import { startMerchantEndpoint } from '../support/merchant-endpoint.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

type Result =
  | { index: number; reference: string | null; ok: true; token: string; card: { brand: string; last4: string; exp_month: number; exp_year: number } }
  | { index: number; reference: string | null; ok: false; error: { type: string; code: string; message: string; param?: string } };

describe.each(storageKinds())('token batches on %s', (storage) => {
  let vault: TestVault;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'token-batches', env: { TESSERA_WEBHOOK_ALLOW_LOCAL: '1' } });
  });
  afterAll(() => vault?.close());

  const submit = (merchant: TestMerchant, body: unknown, headers: Record<string, string> = {}, on = vault) =>
    api(on.url, 'POST', '/v1/token-batches', { key: merchant.secretKey, json: body, headers });

  async function completed(merchant: TestMerchant, id: string, on = vault): Promise<Record<string, any>> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const read = await api(on.url, 'GET', `/v1/token-batches/${id}`, { key: merchant.secretKey });
      expect(read.status, read.text).toBe(200);
      if (read.body.status === 'completed') return read.body;
      if (Date.now() > deadline) throw new Error(`batch ${id} still ${read.body.status} (${read.body.processed}/${read.body.total})`);
      await sleep(50);
    }
  }

  async function allResults(merchant: TestMerchant, id: string, limit = 1000, on = vault): Promise<Result[]> {
    const results: Result[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await api(on.url, 'GET', `/v1/token-batches/${id}/results?limit=${limit}${after === undefined ? '' : `&starting_after=${after}`}`, {
        key: merchant.secretKey,
      });
      expect(page.status, page.text).toBe(200);
      results.push(...page.body.data);
      if (!page.body.has_more) return results;
      after = page.body.data.at(-1).index;
    }
  }

  const count = async (sql: string, params: unknown[]) => (await vault.vault.db.query<{ n: number }>(sql, params)).rows[0]!.n;

  it(
    'accepts a batch with 202, then tokenizes every item in the background: a failed item is its result and never stops the others',
    async () => {
      const merchant = await createMerchant(vault, { name: 'Migration Shop' });
      const year = nextYear();
      const cards: CardPlaintext[] = Array.from({ length: 40 }, (_, n) => ({ number: numberedCard('411111', n), exp_month: 1 + (n % 12), exp_year: year }));
      const INVALID = 7;
      const EXPIRED = 21;
      cards[INVALID] = { number: '4242424242424241', exp_month: 12, exp_year: year };
      cards[EXPIRED] = { number: numberedCard('411111', INVALID), exp_month: 1, exp_year: 2021 };
      const jwes = await encryptMany(vault.url, cards);
      const STALE = 30;
      jwes[STALE] = await encryptCard(vault.url, cards[STALE]!, { iat: Math.floor(Date.now() / 1000) - 11 * 60 });
      const REPLAY = 35;
      jwes[REPLAY] = jwes[3]!;
      const items = jwes.map((card, n) => ({ card, reference: `crm-${n}`, customer: `cus_${n % 5}` }));

      const accepted = await submit(merchant, { correlation_id: 'migration-2026-12', items });
      expect(accepted.status, accepted.text).toBe(202);
      expect(accepted.body).toEqual({
        id: expect.stringMatching(/^tbat_[A-Za-z0-9]{22}$/),
        object: 'token_batch',
        status: 'pending',
        correlation_id: 'migration-2026-12',
        total: 40,
        processed: 0,
        succeeded: 0,
        failed: 0,
        created_at: expect.any(String),
        completed_at: null,
      });

      const batch = await completed(merchant, accepted.body.id);
      expect(batch).toMatchObject({ status: 'completed', total: 40, processed: 40, succeeded: 36, failed: 4, completed_at: expect.any(String) });

      const results = await allResults(merchant, accepted.body.id, 7);
      expect(results.map((r) => r.index)).toEqual(items.map((_, n) => n));
      expect(results.map((r) => r.reference)).toEqual(items.map((item) => item.reference));
      const failures = results.flatMap((r) => (r.ok ? [] : [{ index: r.index, code: r.error.code }]));
      expect(failures).toEqual([
        { index: INVALID, code: 'invalid_card_number' },
        { index: EXPIRED, code: 'card_expired' },
        { index: STALE, code: 'stale_ciphertext' },
        { index: REPLAY, code: 'replayed_ciphertext' },
      ]);
      for (const r of results) if (!r.ok) expect(r.error).toMatchObject({ type: expect.any(String), message: expect.any(String) });

      const first = results[0]!;
      if (!first.ok) throw new Error('the first item failed');
      expect(first.card).toEqual({ brand: 'visa', last4: numberedCard('411111', 0).slice(-4), exp_month: 1, exp_year: year });
      const token = await api(vault.url, 'GET', `/v1/tokens/${first.token}`, { key: merchant.secretKey });
      expect(token.body).toMatchObject({ token: first.token, reusable: true, customer: 'cus_0', card: { last4: numberedCard('411111', 0).slice(-4) } });

      // Every item once: a token per success, a token.created entry per item (failed ones with their code), all naming the batch's request.
      expect(await count('select count(*)::int as n from tokens where merchant_id = $1', [merchant.id])).toBe(36);
      const entries = await vault.vault.db.query<{ outcome: string; code: string | null; request_id: string }>(
        `select outcome, code, request_id from audit_events where merchant_id = $1 and action = 'token.created'`,
        [merchant.id],
      );
      expect(entries.rows).toHaveLength(40);
      expect(entries.rows.filter((e) => e.outcome === 'failed').map((e) => e.code).sort()).toEqual(
        ['card_expired', 'invalid_card_number', 'replayed_ciphertext', 'stale_ciphertext'].sort(),
      );
      expect(new Set(entries.rows.map((e) => e.request_id)).size).toBe(1);
      // The JWEs are kept only until their item is processed.
      expect(await count('select count(*)::int as n from token_batch_items where batch_id = $1 and card is not null', [accepted.body.id])).toBe(0);

      const text = JSON.stringify(results);
      for (const card of cards) expect(text).not.toContain(card.number);
    },
    90_000,
  );

  it('keeps answering tokenizations while a batch runs: each is answered while the batch is still processing', async () => {
    const merchant = await createMerchant(vault);
    const jwes = await encryptMany(vault.url, Array.from({ length: 600 }, (_, n) => cardPlaintext({ number: numberedCard('411111', 1000 + n), cvc: '123' })));
    const singles = await encryptMany(vault.url, Array.from({ length: 3 }, (_, n) => cardPlaintext({ number: numberedCard('411111', 2000 + n), cvc: '123' })));
    const accepted = await submit(merchant, { items: jwes.map((card) => ({ card })) });
    const progress = async () => (await api(vault.url, 'GET', `/v1/token-batches/${accepted.body.id}`, { key: merchant.secretKey })).body;
    while ((await progress()).processed === 0) await sleep(10);
    for (const card of singles) {
      const single = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card } });
      expect(single.status).toBe(201);
      expect(await progress()).toMatchObject({ status: 'processing' });
    }
    expect(await completed(merchant, accepted.body.id)).toMatchObject({ succeeded: 600 });
  }, 90_000);

  it('pages results by index: limit, starting_after and has_more', async () => {
    const merchant = await createMerchant(vault);
    const jwes = await encryptMany(vault.url, Array.from({ length: 12 }, (_, n) => cardPlaintext({ number: numberedCard('411111', 100 + n), cvc: '123' })));
    const accepted = await submit(merchant, { items: jwes.map((card) => ({ card })) });
    await completed(merchant, accepted.body.id);
    const page = (query: string) => api(vault.url, 'GET', `/v1/token-batches/${accepted.body.id}/results${query}`, { key: merchant.secretKey });

    const first = await page('?limit=5');
    expect(first.body).toMatchObject({ object: 'list', has_more: true });
    expect(first.body.data.map((r: Result) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(first.body.data[0].reference).toBeNull();
    const last = await page('?limit=5&starting_after=9');
    expect({ indexes: last.body.data.map((r: Result) => r.index), more: last.body.has_more }).toEqual({ indexes: [10, 11], more: false });
    expect((await page('')).body.data).toHaveLength(12);
    for (const bad of ['?starting_after=-1', '?starting_after=abc', '?starting_after=', '?limit=0', '?limit=1001', '?after=3']) {
      const refused = await page(bad);
      expect({ bad, status: refused.status }).toEqual({ bad, status: 400 });
    }
  });

  describe('the request is validated whole before its 202, and a refused one stores nothing', () => {
    let merchant: TestMerchant;
    let jwe: string;
    beforeAll(async () => {
      merchant = await createMerchant(vault);
      jwe = await encryptCard(vault.url, cardPlaintext());
    });

    it.each([
      ['a body that is not an object', () => [], 400, 'parameter_invalid', undefined],
      ['no items', () => ({ correlation_id: 'x' }), 400, 'parameter_invalid', 'items'],
      ['empty items', () => ({ items: [] }), 400, 'parameter_invalid', 'items'],
      ['10,001 items', () => ({ items: Array.from({ length: 10_001 }, () => ({ card: 'x' })) }), 400, 'parameter_invalid', 'items'],
      ['an item without a card', () => ({ items: [{ card: jwe }, { reference: 'crm-2' }] }), 400, 'parameter_invalid', 'items.1.card'],
      ['a card JWE over 8 KiB', () => ({ items: [{ card: jwe }, { card: `${jwe}${'A'.repeat(8 * 1024)}` }] }), 400, 'parameter_invalid', 'items.1.card'],
      ['an unknown item parameter', () => ({ items: [{ card: jwe, value: 'mine' }] }), 400, 'parameter_unknown', 'value'],
      ['an unknown top-level parameter', () => ({ items: [{ card: jwe }], mode: 'fast' }), 400, 'parameter_unknown', 'mode'],
      ['a reference holding a card number', () => ({ items: [{ card: jwe, reference: 'row 4242 4242 4242 4242' }] }), 422, 'card_number_not_allowed', 'items.0.reference'],
      ['a customer holding a card number', () => ({ items: [{ card: jwe }, { card: jwe, customer: 'cus-5555555555554444' }] }), 422, 'card_number_not_allowed', 'items.1.customer'],
      ['a correlation id holding a card number', () => ({ correlation_id: 'migr-4242424242424242', items: [{ card: jwe }] }), 422, 'card_number_not_allowed', 'correlation_id'],
      ['reusable not a boolean', () => ({ items: [{ card: jwe, reusable: 'yes' }] }), 400, 'parameter_invalid', 'items.0.reusable'],
    ])('%s', async (_what, body, status, code, param) => {
      const before = await count('select count(*)::int as n from token_batches', []);
      const refused = await submit(merchant, body());
      expect({ status: refused.status, code: refused.body.error?.code, param: refused.body.error?.param }).toEqual({ status, code, param });
      expect(refused.text).not.toContain('4242');
      expect(await count('select count(*)::int as n from token_batches', [])).toBe(before);
    });

    it('refuses a body over 16 MiB with 413', async () => {
      const items = Array.from({ length: 2_100 }, () => ({ card: 'A'.repeat(8_000) }));
      const refused = await submit(merchant, { items });
      expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 413, code: 'body_too_large' });
    });

    it('accepts a body over the 64 KiB of other endpoints', async () => {
      const jwes = await encryptMany(vault.url, Array.from({ length: 200 }, (_, n) => cardPlaintext({ number: numberedCard('411111', 300 + n), cvc: '123' })));
      const accepted = await submit(merchant, { items: jwes.map((card) => ({ card })) });
      expect(accepted.status, accepted.text).toBe(202);
      expect(JSON.stringify({ items: jwes.map((card) => ({ card })) }).length).toBeGreaterThan(64 * 1024);
      await completed(merchant, accepted.body.id);
    });

    it('refuses a publishable key and an unknown key', async () => {
      const withPublishable = await api(vault.url, 'POST', '/v1/token-batches', { key: merchant.publishableKey, json: { items: [{ card: jwe }] } });
      expect(withPublishable.status).toBe(403);
      const unknown = await api(vault.url, 'POST', '/v1/token-batches', { key: 'sk_test_000000000000000000000000', json: { items: [{ card: jwe }] } });
      expect(unknown.status).toBe(401);
    });
  });

  it('refuses a ciphertext already used, in the same batch and across requests', async () => {
    const merchant = await createMerchant(vault);
    const [used, twice] = await encryptMany(vault.url, [cardPlaintext({ number: numberedCard('411111', 400), cvc: '123' }), cardPlaintext({ number: numberedCard('411111', 401), cvc: '123' })]);
    expect((await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: used } })).status).toBe(201);
    const accepted = await submit(merchant, { items: [{ card: used }, { card: twice }, { card: twice }] });
    await completed(merchant, accepted.body.id);
    const results = await allResults(merchant, accepted.body.id);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['replayed_ciphertext', 'ok', 'replayed_ciphertext']);
    // And a batch's ciphertext cannot be used again one at a time.
    const again = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: twice } });
    expect({ status: again.status, code: again.body.error.code }).toEqual({ status: 409, code: 'replayed_ciphertext' });
  });

  it("writes the entries and events one tokenization at a time would: each token.created event holds its token as made, and the merchant's chain verifies", async () => {
    const merchant = await createMerchant(vault);
    const plaintexts = [1, 2, 3].map((n) => cardPlaintext({ number: numberedCard('411111', 410 + n), cvc: '123' }));
    const [alone, ...cards] = await encryptMany(vault.url, [cardPlaintext({ number: numberedCard('411111', 410), cvc: '123' }), ...plaintexts]);
    const single = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: alone, customer: 'cus_one' } });
    expect(single.status).toBe(201);
    // Items that nothing refuses, and one that is refused (the same JWE again): both of a chunk's ways of writing items.
    const accepted = await submit(merchant, { items: [...cards.map((card) => ({ card, customer: 'cus_batch' })), { card: cards[0] }] });
    await completed(merchant, accepted.body.id);
    const results = await allResults(merchant, accepted.body.id);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok', 'ok', 'replayed_ciphertext']);

    const event = async (token: string) =>
      (await vault.vault.db.query<{ data: Record<string, unknown> }>(`select data from audit_events where event_type = 'token.created' and token = $1`, [token])).rows;
    const [singleEvent] = await event(single.body.token);
    for (const result of results.filter((r) => r.ok)) {
      const events = await event(result.token);
      expect(events).toHaveLength(1);
      const { data } = events[0]!;
      expect(Object.keys(data).sort()).toEqual(Object.keys(singleEvent!.data).sort());
      expect(data).toMatchObject({ token: result.token, customer: 'cus_batch', reusable: true, ...result.card });
    }
    const report = await api(vault.url, 'GET', '/v1/audit/verify', { key: vault.adminKey });
    expect(report.status).toBe(200);
    expect(report.body.problems.filter((p: { chain: string }) => p.chain === merchant.id)).toEqual([]);
  });

  it('applies unique tokens per item: a card already tokenized, or earlier in the batch, answers its existing token', async () => {
    const merchant = await createMerchant(vault, { uniqueTokens: true });
    const known = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)) } });
    expect(known.status).toBe(201);
    const jwes = await encryptMany(vault.url, [
      cardPlaintext(CARDS.visa, { exp_month: 3, exp_year: nextYear() + 2 }),
      cardPlaintext(CARDS.mastercard),
      cardPlaintext(CARDS.mastercard, { exp_month: 5 }),
      cardPlaintext(CARDS.amex),
    ]);
    const accepted = await submit(merchant, { items: jwes.map((card, n) => ({ card, reference: `r${n}` })) });
    await completed(merchant, accepted.body.id);
    const results = await allResults(merchant, accepted.body.id);
    expect(results.every((r) => r.ok)).toBe(true);
    const tokens = results.map((r) => (r.ok ? r.token : ''));
    expect(tokens[0]).toBe(known.body.token);
    expect(tokens[2]).toBe(tokens[1]);
    expect(new Set(tokens).size).toBe(3);
    // The existing token was refreshed as one at a time would have: its new expiry.
    const refreshed = await api(vault.url, 'GET', `/v1/tokens/${known.body.token}`, { key: merchant.secretKey });
    expect(refreshed.body.card).toMatchObject({ exp_month: 3, exp_year: nextYear() + 2 });
    expect(await count('select count(*)::int as n from tokens where merchant_id = $1', [merchant.id])).toBe(3);
  });

  it('applies decline duplicates per item: a card whose token declines duplicates fails that item alone', async () => {
    const merchant = await createMerchant(vault);
    const declining = await api(vault.url, 'POST', '/v1/tokens', {
      key: merchant.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.amex)), decline_duplicates: true },
    });
    expect(declining.status).toBe(201);
    const jwes = await encryptMany(vault.url, [cardPlaintext(CARDS.amex), cardPlaintext(CARDS.mastercard), cardPlaintext(CARDS.mastercard), cardPlaintext(CARDS.visa)]);
    const accepted = await submit(merchant, {
      items: [{ card: jwes[0] }, { card: jwes[1], decline_duplicates: true }, { card: jwes[2] }, { card: jwes[3], reusable: false }],
    });
    await completed(merchant, accepted.body.id);
    const results = await allResults(merchant, accepted.body.id);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['duplicate_card', 'ok', 'duplicate_card', 'ok']);
    const single = results[3]!;
    if (!single.ok) throw new Error('the single-use item failed');
    expect((await api(vault.url, 'GET', `/v1/tokens/${single.token}`, { key: merchant.secretKey })).body).toMatchObject({ reusable: false });
  });

  it('honours Idempotency-Key: the same request answers the same batch, another one is a mismatch', async () => {
    const merchant = await createMerchant(vault);
    const jwe = await encryptCard(vault.url, cardPlaintext({ number: numberedCard('411111', 500), cvc: '123' }));
    const body = { correlation_id: 'once', items: [{ card: jwe, reference: 'a' }] };
    const first = await submit(merchant, body, { 'Idempotency-Key': 'batch-once-1' });
    const second = await submit(merchant, body, { 'Idempotency-Key': 'batch-once-1' });
    expect(first.status).toBe(202);
    expect({ status: second.status, text: second.text, replayed: second.headers.get('idempotent-replayed') }).toEqual({ status: 202, text: first.text, replayed: 'true' });
    const other = await submit(merchant, { ...body, correlation_id: 'twice' }, { 'Idempotency-Key': 'batch-once-1' });
    expect({ status: other.status, code: other.body.error.code }).toEqual({ status: 422, code: 'idempotency_mismatch' });
    expect(await count('select count(*)::int as n from token_batches where merchant_id = $1', [merchant.id])).toBe(1);
    await completed(merchant, first.body.id);
  });

  it("answers 404 for another merchant's batch and its results", async () => {
    const owner = await createMerchant(vault);
    const other = await createMerchant(vault);
    const accepted = await submit(owner, { items: [{ card: await encryptCard(vault.url, cardPlaintext({ number: numberedCard('411111', 600), cvc: '123' })) }] });
    for (const path of [`/v1/token-batches/${accepted.body.id}`, `/v1/token-batches/${accepted.body.id}/results`, '/v1/token-batches/tbat_unknown']) {
      const read = await api(vault.url, 'GET', path, { key: other.secretKey });
      expect({ path, status: read.status, code: read.body.error.code }).toEqual({ path, status: 404, code: 'token_batch_not_found' });
    }
    await completed(owner, accepted.body.id);
  });

  it('sends token_batch.completed with the correlation id and counts to the endpoints that asked for it', async () => {
    const merchant = await createMerchant(vault);
    const receiver = await startMerchantEndpoint();
    try {
      const endpoint = await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: merchant.secretKey, json: { url: receiver.url, events: ['token_batch.completed'] } });
      expect(endpoint.status).toBe(201);
      const jwes = await encryptMany(vault.url, [cardPlaintext({ number: numberedCard('411111', 700), cvc: '123' }), cardPlaintext({ number: '4242424242424241', cvc: '123' })]);
      const accepted = await submit(merchant, { correlation_id: 'migration-7', items: jwes.map((card) => ({ card })) });
      const [received] = await receiver.waitFor(1, 30_000);
      const event = new Webhook(endpoint.body.secret).verify(received!.body, received!.headers as Record<string, string>) as Record<string, any>;
      expect(event).toMatchObject({
        type: 'token_batch.completed',
        data: { object: { id: accepted.body.id, object: 'token_batch', status: 'completed', correlation_id: 'migration-7', total: 2, processed: 2, succeeded: 1, failed: 1 } },
      });
      // Only the batch's completion: the items' token.created events went to no endpoint that did not ask.
      await sleep(300);
      expect(receiver.received).toHaveLength(1);
      const log = await api(vault.url, 'GET', '/v1/events?limit=5', { key: merchant.secretKey });
      expect(log.body.data[0]).toMatchObject({ id: event['id'], type: 'token_batch.completed', action: 'token_batch.completed' });
    } finally {
      await receiver.close();
    }
  });
});

describe.each(storageKinds())('token batch timing on %s', (storage) => {
  it('checks each item against the batch acceptance time, however late it is processed', async () => {
    // Items may be 2 s old; the batch is processed 3 s after it is accepted.
    const vault = await startTestVault({ storage, name: 'token-batch-iat', jobs: false, env: { TESSERA_JWE_MAX_AGE_SECONDS: '2' } });
    try {
      const merchant = await createMerchant(vault);
      const [key] = await fetchJwks(vault.url);
      const now = Math.floor(Date.now() / 1000);
      const fresh = await encryptCard(vault.url, cardPlaintext(CARDS.visa), { key: key!, iat: now });
      const old = await encryptCard(vault.url, cardPlaintext(CARDS.mastercard), { key: key!, iat: now - 4 });
      const accepted = await api(vault.url, 'POST', '/v1/token-batches', { key: merchant.secretKey, json: { items: [{ card: fresh }, { card: old }] } });
      expect(accepted.status).toBe(202);
      await sleep(3_000);
      await vault.vault.jobs.start();
      await vault.vault.jobs.whenIdle();
      const results = await api(vault.url, 'GET', `/v1/token-batches/${accepted.body.id}/results`, { key: merchant.secretKey });
      expect(results.body.data.map((r: Result) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'stale_ciphertext']);
      // One at a time, the same fresh ciphertext is now too old.
      const late = await encryptCard(vault.url, cardPlaintext(CARDS.amex), { key: key!, iat: now });
      const single = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: late } });
      expect(single.body.error.code).toBe('stale_ciphertext');
    } finally {
      await vault.close();
    }
  }, 30_000);
});
