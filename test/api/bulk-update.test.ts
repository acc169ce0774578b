import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, nextYear } from '../support/cards.ts';
import { scanTableDump } from '../support/leaks.ts';
import { batchTokens, createTokens, encryptMany } from '../support/many.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

type Result = { token: string | null; ok: boolean; object?: any; error?: { code: string; message: string; param?: string } };

describe.each(storageKinds())('bulk token update (PATCH /v1/tokens) on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'bulk-update' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const patch = (merchant: TestMerchant, tokens: unknown[], headers: Record<string, string> = {}) =>
    // A thousand decrypts: the time it takes is bench:bulk's to measure; the test waits as long as its own timeout.
    api(vault.url, 'PATCH', '/v1/tokens', { key: merchant.secretKey, json: { tokens }, headers, timeoutMs: 90_000 });
  const read = (merchant: TestMerchant, token: string) => api(vault.url, 'GET', `/v1/tokens/${token}`, { key: merchant.secretKey });
  const updatedEvents = async (merchant: TestMerchant) => {
    const { rows } = await vault.vault.db.query<{ n: number }>(
      `select count(*)::int as n from audit_events where merchant_id = $1 and action = 'token.updated' and outcome = 'succeeded'`,
      [merchant.id],
    );
    return rows[0]!.n;
  };

  it(
    'updates 1,000 tokens of which 3 are invalid: PARTIAL_SUCCESS, 997 updated in request order, the 3 unchanged with their codes, and a retry with the same key applies nothing twice',
    async () => {
      const merchant = await createMerchant(vault, { name: 'Bulk Shop' });
      // Made in one token batch (what this test is about is the update): the ones compared below are read as GET shows them.
      const tokenIds = await batchTokens(vault.url, merchant, 999, cardPlaintext(CARDS.visa, { exp_month: 12, exp_year: nextYear() }));
      const LUHN = 100;
      const EXPIRED = 900;
      const before = new Map<number, any>();
      for (const index of [0, LUHN, EXPIRED]) {
        const stored = await read(merchant, tokenIds[index]!);
        expect(stored.status).toBe(200);
        before.set(index, stored.body);
      }
      expect(before.get(0).card).toMatchObject({ exp_month: 12, exp_year: nextYear(), name: 'Ada Lovelace', fingerprint: expect.any(String) });
      const tokens = tokenIds.map((token, index) => ({ token, card: before.get(index)?.card }));
      const newExpiry = { exp_month: 6, exp_year: nextYear() + 3 };
      const cards = tokens.map(() => cardPlaintext(CARDS.visa, { ...newExpiry, name: undefined }));
      cards[LUHN] = cardPlaintext(CARDS.visa, { number: '4242424242424241', ...newExpiry });
      cards[EXPIRED] = cardPlaintext(CARDS.visa, { exp_month: 1, exp_year: 2021 });
      const jwes = await encryptMany(vault.url, [...cards, cardPlaintext(CARDS.visa, newExpiry)]);
      const UNKNOWN = 500;
      const items = tokens.map((t, i) => ({ token: t.token, card: jwes[i] }));
      // The unknown token sits in the middle; request order must hold around it.
      items.splice(UNKNOWN, 0, { token: 'tok_0000000000000000000000', card: jwes[999]! });
      expect(items).toHaveLength(1000);

      const response = await patch(merchant, items, { 'Idempotency-Key': 'bulk-expiry-refresh-1' });
      expect(response.status).toBe(200);

      const results = response.body.results as Result[];
      expect(response.body.status).toBe('PARTIAL_SUCCESS');
      expect(results.map((r) => r.token)).toEqual(items.map((item) => item.token));
      expect(results.filter((r) => r.ok)).toHaveLength(997);
      const failed = results.flatMap((r, position) => (r.ok ? [] : [{ position, code: r.error!.code }]));
      expect(failed).toEqual([
        { position: LUHN, code: 'invalid_card_number' },
        { position: UNKNOWN, code: 'token_not_found' },
        { position: EXPIRED + 1, code: 'card_expired' },
      ]);
      for (const r of results.filter((r) => !r.ok)) expect(r.error!.message).toEqual(expect.any(String));
      expect(response.text).not.toContain(CARDS.visa.number);
      expect(response.text).not.toContain('4242424242424241');

      // An updated expiry keeps the token name and the fingerprint, and the result is the token as GET shows it
      // (but for its network token, which only a read of one token looks up: docs/api.md).
      const sample = results[0]!;
      expect(sample.object).toMatchObject({ token: tokens[0]!.token, card: { ...newExpiry, fingerprint: tokens[0]!.card.fingerprint, name: 'Ada Lovelace' } });
      expect((await read(merchant, tokens[0]!.token)).body).toEqual({ ...sample.object, network_token: null });
      // The refused ones are as they were.
      for (const index of [LUHN, EXPIRED]) {
        const unchanged = await read(merchant, tokens[index]!.token);
        expect(unchanged.body.card).toEqual(tokens[index]!.card);
      }
      expect((await read(merchant, 'tok_0000000000000000000000')).status).toBe(404);
      expect(await updatedEvents(merchant)).toBe(997);

      const retry = await patch(merchant, items, { 'Idempotency-Key': 'bulk-expiry-refresh-1' });
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.text).toBe(response.text);
      expect(await updatedEvents(merchant)).toBe(997);
    },
    120_000,
  );

  it('answers FAILURE when no item succeeds, and SUCCESS when all do', async () => {
    const [a, b] = await createTokens(vault.url, shop, 2);
    const [bad1, bad2, good1, good2] = await encryptMany(vault.url, [
      cardPlaintext(CARDS.visa, { number: '4242424242424241' }),
      cardPlaintext(CARDS.visa, { cvc: '12' }),
      cardPlaintext(CARDS.visa, { exp_month: 3 }),
      cardPlaintext(CARDS.visa, { exp_month: 4 }),
    ]);
    const failure = await patch(shop, [
      { token: a!.token, card: bad1 },
      { token: b!.token, card: bad2 },
    ]);
    expect(failure.status).toBe(200);
    expect(failure.body.status).toBe('FAILURE');
    expect(failure.body.results.map((r: Result) => r.error!.code)).toEqual(['invalid_card_number', 'invalid_cvc']);

    const success = await patch(shop, [
      { token: a!.token, card: good1 },
      { token: b!.token, card: good2 },
    ]);
    expect(success.body.status).toBe('SUCCESS');
    expect(success.body.results.map((r: Result) => r.object.card.exp_month)).toEqual([3, 4]);
  });

  it('refuses more than 1,000 items, or none, with 400 parameter_invalid and changes nothing', async () => {
    const [token] = await createTokens(vault.url, shop, 1);
    const items = Array.from({ length: 1001 }, () => ({ token: token!.token, reusable: false }));
    const tooMany = await patch(shop, items);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ code: 'parameter_invalid', param: 'tokens' });
    expect((await read(shop, token!.token)).body.reusable).toBe(true);
    expect((await patch(shop, [])).body.error.code).toBe('parameter_invalid');
  });

  it('changes the card number: new brand, last 4 and fingerprint, same token name, cardholder name kept when the update has none', async () => {
    const [token] = await createTokens(vault.url, shop, 1, cardPlaintext(CARDS.visa));
    const [card] = await encryptMany(vault.url, [cardPlaintext(CARDS.mastercard, { name: undefined })]);
    const response = await patch(shop, [{ token: token!.token, card }]);
    const object = response.body.results[0].object;
    expect(object.token).toBe(token!.token);
    expect(object.card).toMatchObject({ brand: 'mastercard', last4: '4444', name: 'Ada Lovelace' });
    expect(object.card.fingerprint).not.toBe(token!.card.fingerprint);
    // The same card tokenized afresh has the fingerprint the update gave.
    const [fresh] = await createTokens(vault.url, shop, 1, cardPlaintext(CARDS.mastercard));
    expect(fresh!.card.fingerprint).toBe(object.card.fingerprint);
  });

  it("refuses to move a token onto a card another token declines duplicates of (duplicate_card), and leaves it as it was", async () => {
    const merchant = await createMerchant(vault, { name: 'Bulk Offer Shop' });
    await createTokens(vault.url, merchant, 1, cardPlaintext(CARDS.amex), { decline_duplicates: true });
    const [other] = await createTokens(vault.url, merchant, 1, cardPlaintext(CARDS.visa));
    const [amex, sameVisa] = await encryptMany(vault.url, [cardPlaintext(CARDS.amex), cardPlaintext(CARDS.visa, { exp_month: 1 })]);
    const response = await patch(merchant, [{ token: other!.token, card: amex }]);
    expect(response.body.results[0].error.code).toBe('duplicate_card');
    expect((await read(merchant, other!.token)).body.card.brand).toBe('visa');
    // A new expiry for its own card is not a duplicate.
    expect((await patch(merchant, [{ token: other!.token, card: sameVisa }])).body.status).toBe('SUCCESS');
  });

  it('keeps a CVC sent with an update sealed apart, with its 30-minute expiry, and drops the old CVC when the new card has none', async () => {
    const [token] = await createTokens(vault.url, shop, 1);
    const cvcOf = async () =>
      (
        await vault.vault.db.query<{ cvc_sealed: Uint8Array | null; cvc_expires_at: Date | null; card_sealed: Uint8Array }>(
          'select cvc_sealed, cvc_expires_at, card_sealed from tokens where merchant_id = $1 and token = $2',
          [shop.id, token!.token],
        )
      ).rows[0]!;
    const [withCvc, withoutCvc] = await encryptMany(vault.url, [
      cardPlaintext(CARDS.visa, { cvc: CARDS.visa.cvc, exp_month: 5 }),
      cardPlaintext(CARDS.visa, { cvc: undefined, exp_month: 7 }),
    ]);
    await patch(shop, [{ token: token!.token, card: withCvc }]);
    const sealed = await cvcOf();
    expect(sealed.cvc_sealed).not.toBeNull();
    expect(scanTableDump('vault', { table: 'tokens', values: [sealed.cvc_sealed!, sealed.card_sealed] })).toEqual([]);
    expect((sealed.cvc_expires_at!.getTime() - Date.now()) / 60_000).toBeCloseTo(30, 0);

    await patch(shop, [{ token: token!.token, card: withoutCvc }]);
    expect(await cvcOf()).toMatchObject({ cvc_sealed: null, cvc_expires_at: null });
  });

  it('refuses, item by item, a JWE already used, a bad JWE, a malformed item, an empty update and a token named twice', async () => {
    const [t1, t2, t3, t4, t5, t6] = await createTokens(vault.url, shop, 6);
    const used = await encryptCard(vault.url, cardPlaintext());
    expect((await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: used } })).status).toBe(201);
    const [fresh] = await encryptMany(vault.url, [cardPlaintext(CARDS.visa, { exp_month: 2 })]);
    const response = await patch(shop, [
      { token: t1!.token, card: used },
      { token: t2!.token, card: 'not-a-jwe' },
      { token: t3!.token, reusable: 'yes' },
      { token: t4!.token, colour: 'blue' },
      { token: t5!.token },
      { token: t6!.token, reusable: false },
      { token: CARDS.visa.number, reusable: false },
      'tok_x',
      { token: t6!.token, card: fresh },
    ]);
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('PARTIAL_SUCCESS');
    expect(response.body.results.map((r: Result) => [r.token, r.ok ? 'ok' : r.error!.code])).toEqual([
      [t1!.token, 'replayed_ciphertext'],
      [t2!.token, 'invalid_jwe'],
      [t3!.token, 'parameter_invalid'],
      [t4!.token, 'parameter_unknown'],
      [t5!.token, 'parameter_invalid'],
      [t6!.token, 'ok'],
      // Never echoed: it looks like a card number.
      [null, 'card_number_not_allowed'],
      [null, 'parameter_invalid'],
      [t6!.token, 'parameter_invalid'],
    ]);
    expect(response.text).not.toContain(CARDS.visa.number);
    expect(response.body.results[5].object).toMatchObject({ reusable: false, expires_at: expect.any(String) });
  });

  it('turns a saved card single-use (expiring in 30 minutes) and back, and sets decline_duplicates', async () => {
    const merchant = await createMerchant(vault, { name: 'Bulk Flags Shop' });
    const [token] = await createTokens(vault.url, merchant, 1);
    const single = await patch(merchant, [{ token: token!.token, reusable: false }]);
    const object = single.body.results[0].object;
    expect(object.reusable).toBe(false);
    expect((Date.parse(object.expires_at) - Date.now()) / 60_000).toBeCloseTo(30, 0);
    const saved = await patch(merchant, [{ token: token!.token, reusable: true, decline_duplicates: true }]);
    expect(saved.body.results[0].object).toMatchObject({ reusable: true, expires_at: null, decline_duplicates: true });
  });

  it("answers token_not_found for another merchant's token and a deleted one, and changes neither", async () => {
    const other = await createMerchant(vault, { name: 'Bulk Other Shop' });
    const [theirs] = await createTokens(vault.url, other, 1);
    const [mine] = await createTokens(vault.url, shop, 1);
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${mine!.token}`, { key: shop.secretKey })).status).toBe(200);
    const response = await patch(shop, [
      { token: theirs!.token, reusable: false },
      { token: mine!.token, reusable: false },
    ]);
    expect(response.body.status).toBe('FAILURE');
    expect(response.body.results.map((r: Result) => r.error!.code)).toEqual(['token_not_found', 'token_not_found']);
    expect((await read(other, theirs!.token)).body.reusable).toBe(true);
  });

  it('answers a reused Idempotency-Key with another body with 422 idempotency_mismatch, and one first used on another endpoint too', async () => {
    const [token] = await createTokens(vault.url, shop, 1);
    expect((await patch(shop, [{ token: token!.token, reusable: true }], { 'Idempotency-Key': 'bulk-mismatch' })).status).toBe(200);
    const other = await patch(shop, [{ token: token!.token, reusable: false }], { 'Idempotency-Key': 'bulk-mismatch' });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_mismatch');
    expect((await read(shop, token!.token)).body.reusable).toBe(true);

    const merchantUpdate = await api(vault.url, 'PATCH', '/v1/merchant', {
      key: shop.secretKey,
      json: { unique_tokens: false },
      headers: { 'Idempotency-Key': 'bulk-mismatch' },
    });
    expect(merchantUpdate.status).toBe(422);
    expect(merchantUpdate.body.error.code).toBe('idempotency_mismatch');
  });

  it('deletes a token: it then answers 404 on GET, PATCH, DELETE and is gone from lists; its card and CVC ciphertext are erased', async () => {
    const customer = `cus_deleted_${storage}`;
    const [token] = await createTokens(vault.url, shop, 1, cardPlaintext(), { customer });
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${token!.token}`, { key: shop.secretKey })).status).toBe(200);
    expect((await read(shop, token!.token)).status).toBe(404);
    const listed = await api(vault.url, 'GET', `/v1/tokens?customer=${customer}`, { key: shop.secretKey });
    expect(listed.body.data).toEqual([]);
    const byFingerprint = await api(vault.url, 'GET', `/v1/tokens?fingerprint=${token!.card.fingerprint}&limit=100`, { key: shop.secretKey });
    expect(byFingerprint.body.data.map((t: { token: string }) => t.token)).not.toContain(token!.token);
    const patched = await patch(shop, [{ token: token!.token, reusable: false }]);
    expect(patched.body.results[0].error.code).toBe('token_not_found');
    const again = await api(vault.url, 'DELETE', `/v1/tokens/${token!.token}`, { key: shop.secretKey });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('token_not_found');
    const { rows } = await vault.vault.db.query('select card_sealed, cvc_sealed from tokens where merchant_id = $1 and token = $2', [
      shop.id,
      token!.token,
    ]);
    expect(rows).toEqual([{ card_sealed: null, cvc_sealed: null }]);
  });
});
