import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { cardDataIn, dumpTables, scanTableDump } from '../support/leaks.ts';
import { createTokens, encryptMany } from '../support/many.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

interface Event {
  id: string;
  action: string;
  outcome: 'succeeded' | 'failed';
  code: string | null;
  actor: string;
  token: string | null;
}

/** A secret key as the audit log names it. */
const redacted = (merchant: TestMerchant) => `sk_test_…${merchant.secretKey.slice(-4)}`;

describe.each(storageKinds())('audit log and merchant isolation on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let otherShop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'audit' });
    shop = await createMerchant(vault, { name: 'Audited Shop' });
    otherShop = await createMerchant(vault, { name: 'Other Audited Shop' });
  });
  afterAll(() => vault?.close());

  /** The merchant's events, oldest first (the API lists newest first). */
  async function events(merchant: TestMerchant, query = ''): Promise<Event[]> {
    const response = await api(vault.url, 'GET', `/v1/events?limit=100${query}`, { key: merchant.secretKey });
    expect(response.status).toBe(200);
    return (response.body.data as Event[]).reverse();
  }
  const summary = (list: Event[]) => list.map((e) => ({ action: e.action, outcome: e.outcome, code: e.code, actor: e.actor, token: e.token }));

  it('records a token created, read, listed, updated and deleted with the secret key, each with its token and the redacted key', async () => {
    const created = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext()), customer: 'cus_audit' },
    });
    const token = created.body.token as string;
    await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: shop.secretKey });
    await api(vault.url, 'GET', '/v1/tokens?customer=cus_audit', { key: shop.secretKey });
    const [card] = await encryptMany(vault.url, [cardPlaintext(CARDS.visa, { exp_month: 2 })]);
    await api(vault.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json: { tokens: [{ token, card }] } });
    await api(vault.url, 'DELETE', `/v1/tokens/${token}`, { key: shop.secretKey });

    const actor = redacted(shop);
    expect(actor).toMatch(/^sk_test_…[0-9A-Za-z]{4}$/);
    expect(summary(await events(shop, `&token=${token}`))).toEqual([
      { action: 'token.created', outcome: 'succeeded', code: null, actor, token },
      { action: 'token.read', outcome: 'succeeded', code: null, actor, token },
      { action: 'token.updated', outcome: 'succeeded', code: null, actor, token },
      { action: 'token.deleted', outcome: 'succeeded', code: null, actor, token },
    ]);
    const listed = (await events(shop)).filter((e) => e.action === 'token.listed');
    expect(summary(listed).at(-1)).toEqual({ action: 'token.listed', outcome: 'succeeded', code: null, actor, token: null });
  });

  it('records failures: a read of an unknown token, a refused bulk item, a refused tokenization', async () => {
    await api(vault.url, 'GET', '/v1/tokens/tok_unknownunknownunknownab', { key: shop.secretKey });
    await api(vault.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json: { tokens: [{ token: 'tok_unknown0000000000000001', reusable: false }] } });
    await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa, { number: '4242424242424241' })) },
    });
    const recent = summary((await events(shop)).slice(-3));
    const actor = redacted(shop);
    expect(recent).toEqual([
      { action: 'token.read', outcome: 'failed', code: 'token_not_found', actor, token: 'tok_unknownunknownunknownab' },
      { action: 'token.updated', outcome: 'failed', code: 'token_not_found', actor, token: 'tok_unknown0000000000000001' },
      { action: 'token.created', outcome: 'failed', code: 'invalid_card_number', actor, token: null },
    ]);
  });

  it('records the card fields as the publishable key, a verification, and a reused unique token', async () => {
    const fields = await api(vault.url, 'POST', '/v1/tokens', {
      json: { key: shop.publishableKey, session: await openSession(vault.url, shop), card: await encryptCard(vault.url, cardPlaintext()) },
    });
    expect(summary(await events(shop, `&token=${fields.body.token}`))).toEqual([
      { action: 'token.created', outcome: 'succeeded', code: null, actor: shop.publishableKey, token: fields.body.token },
    ]);

    const verified = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext({ number: '4000000000009995', cvc: CARDS.visa.cvc })), verify: true },
    });
    expect(summary(await events(shop, `&token=${verified.body.token}`)).map((e) => [e.action, e.outcome, e.code])).toEqual([
      ['token.created', 'succeeded', null],
      ['token.verified', 'failed', 'insufficient_funds'],
    ]);

    const unique = await createMerchant(vault, { name: 'Unique Audited Shop', uniqueTokens: true });
    const first = await api(vault.url, 'POST', '/v1/tokens', { key: unique.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()) } });
    const again = await api(vault.url, 'POST', '/v1/tokens', { key: unique.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()), verify: true } });
    expect(again.body.token).toBe(first.body.token);
    expect(summary(await events(unique, `&token=${first.body.token}`)).map((e) => [e.action, e.outcome])).toEqual([
      ['token.created', 'succeeded'],
      ['token.reused', 'succeeded'],
      ['token.verified', 'succeeded'],
    ]);
  });

  it('records merchant.created (by admin), merchant.read and merchant.updated for the merchant, and key.rotated with no merchant', async () => {
    const merchant = await createMerchant(vault, { name: 'Settings Shop' });
    await api(vault.url, 'GET', '/v1/merchant', { key: merchant.secretKey });
    const updated = await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { webhook_url: 'https://shop.example/hooks' } });
    expect(updated.status).toBe(200);
    const actor = redacted(merchant);
    expect(summary(await events(merchant))).toEqual([
      { action: 'merchant.created', outcome: 'succeeded', code: null, actor: 'admin', token: null },
      { action: 'merchant.read', outcome: 'succeeded', code: null, actor, token: null },
      { action: 'merchant.updated', outcome: 'succeeded', code: null, actor, token: null },
    ]);

    const rotated = await api(vault.url, 'POST', '/v1/keys/rotate', { key: vault.adminKey, json: {} });
    expect(rotated.status).toBe(201);
    const { rows } = await vault.vault.db.query<{ merchant_id: string | null; actor: string; outcome: string }>(
      `select merchant_id, actor, outcome from audit_events where action = 'key.rotated'`,
    );
    expect(rows).toEqual([{ merchant_id: null, actor: 'admin', outcome: 'succeeded' }]);
  });

  it("answers the publishable key with 403 secret_key_required on every secret endpoint, and records auth.failed in the operator's log, not its merchant's", async () => {
    const [token] = await createTokens(vault.url, shop, 1);
    const attempts: [string, string, unknown?][] = [
      ['GET', `/v1/tokens/${token!.token}`],
      ['GET', '/v1/tokens'],
      ['PATCH', '/v1/tokens', { tokens: [{ token: token!.token, reusable: false }] }],
      ['DELETE', `/v1/tokens/${token!.token}`],
      ['GET', '/v1/merchant'],
      ['PATCH', '/v1/merchant', { unique_tokens: true }],
      ['GET', '/v1/events'],
    ];
    for (const [method, path, json] of attempts) {
      const response = await api(vault.url, method, path, { key: shop.publishableKey, ...(json === undefined ? {} : { json }) });
      expect([method, path, response.status, response.body.error.code]).toEqual([method, path, 403, 'secret_key_required']);
    }
    expect((await events(shop)).filter((e) => e.action.startsWith('auth.'))).toEqual([]);
    const { rows } = await vault.vault.db.query<{ merchant_id: string | null; action: string; outcome: string; code: string; actor: string }>(
      `select merchant_id, action, outcome, code, actor from audit_events where actor = $1 and action like 'auth.%' order by seq`,
      [shop.publishableKey],
    );
    expect(rows).toEqual(
      attempts.map(() => ({ merchant_id: null, action: 'auth.failed', outcome: 'failed', code: 'secret_key_required', actor: shop.publishableKey })),
    );
    expect((await api(vault.url, 'GET', `/v1/tokens/${token!.token}`, { key: shop.secretKey })).body.reusable).toBe(true);
  });

  it("shows another merchant's secret key none of this merchant's tokens or events", async () => {
    const customer = `cus_isolated_${storage}`;
    const [token] = await createTokens(vault.url, shop, 1, cardPlaintext(), { customer });
    const theirs = otherShop.secretKey;
    expect((await api(vault.url, 'GET', `/v1/tokens/${token!.token}`, { key: theirs })).status).toBe(404);
    expect((await api(vault.url, 'GET', `/v1/tokens?customer=${customer}`, { key: theirs })).body.data).toEqual([]);
    expect((await api(vault.url, 'GET', `/v1/tokens?fingerprint=${token!.card.fingerprint}`, { key: theirs })).body.data).toEqual([]);
    const patched = await api(vault.url, 'PATCH', '/v1/tokens', { key: theirs, json: { tokens: [{ token: token!.token, reusable: false }] } });
    expect(patched.body.results[0].error.code).toBe('token_not_found');
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${token!.token}`, { key: theirs })).status).toBe(404);
    expect((await api(vault.url, 'GET', `/v1/tokens/${token!.token}`, { key: shop.secretKey })).body.reusable).toBe(true);

    expect((await events(shop, `&token=${token!.token}`)).length).toBeGreaterThan(0);
    // The other merchant's log holds its own failed attempts on that name, never this merchant's entries.
    const theirsOnToken = await events(otherShop, `&token=${token!.token}`);
    expect(theirsOnToken.map((e) => [e.action, e.outcome, e.actor])).toEqual([
      ['token.read', 'failed', redacted(otherShop)],
      ['token.updated', 'failed', redacted(otherShop)],
      ['token.deleted', 'failed', redacted(otherShop)],
    ]);
    const allTheirs = await events(otherShop);
    const myIds = new Set((await events(shop)).map((e) => e.id));
    expect(allTheirs.some((e) => myIds.has(e.id))).toBe(false);
    expect(allTheirs.every((e) => e.actor === redacted(otherShop) || e.actor === 'admin')).toBe(true);
    // A cursor from another merchant's log does not page into it.
    const cursor = [...myIds][0]!;
    expect((await api(vault.url, 'GET', `/v1/events?starting_after=${cursor}`, { key: theirs })).body.data).toEqual([]);
  });

  it('keeps every card number and CVC the suite sent out of audit_events, even ones sent where a token name belongs', async () => {
    await api(vault.url, 'GET', `/v1/tokens/${CARDS.visa.number}`, { key: shop.secretKey });
    await api(vault.url, 'DELETE', `/v1/tokens/${CARDS.mastercard.number}`, { key: shop.secretKey });
    await api(vault.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json: { tokens: [{ token: CARDS.amex.number, reusable: true }] } });
    await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.amex)), verify: true, value: `audit-${storage}` },
    });

    const dumps = await dumpTables(async (sql) => (await vault.vault.db.query<Record<string, unknown>>(sql)).rows);
    const audit = dumps.find((dump) => dump.table === 'audit_events')!;
    expect(audit.values.length).toBeGreaterThan(50);
    // The chain's hashes are bytea: scanned like raw bytes (a CVC only inside readable text), as the leak tests do.
    expect(scanTableDump('audit', audit)).toEqual([]);
    const text = audit.values.filter((value) => typeof value === 'string').join('\n');
    expect(cardDataIn(text)).toBeUndefined();
    for (const card of Object.values(CARDS)) {
      expect(text).not.toContain(card.number);
      expect(text).not.toContain(card.number.slice(0, 12));
    }
    expect(text).not.toMatch(/sk_test_[0-9A-Za-z]{20,}/);
  });
});
