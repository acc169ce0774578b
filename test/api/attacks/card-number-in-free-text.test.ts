import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, uniqueLetters, type ApiResponse, type TestMerchant } from '../../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../../support/cards.ts';
import { cardDataIn, dumpTables } from '../../support/leaks.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/**
 * Issue #8, item 2: a card number typed into the cardholder name was stored
 * in the clear (`tokens.cardholder_name`, the stored idempotent response)
 * and returned by `GET /v1/tokens/{t}`. Every free-text field the vault
 * stores, echoes or records now refuses an embedded card number:
 * 422 `card_number_not_allowed` with `param`, and nothing is kept.
 */
const PAN = CARDS.mastercard.number;

/** The same card number as people (and attackers) write it in text. */
const DISGUISES: [string, string][] = [
  ['plain', PAN],
  ['spaced', CARDS.mastercard.spaced],
  ['dashed, inside words', 'Ada 5555-5555-5555-4444 Lovelace'],
  ['spaced and dashed', '5555 - 5555 - 5555 - 4444'],
  ['with no-break spaces', '5555\u00a05555\u00a05555\u00a04444'],
  ['with zero-width spaces', '5555\u200b5555\u200b5555\u200b4444'],
  ['in full-width digits', '５５５５ ５５５５ ５５５５ ４４４４'],
  ['in Arabic-Indic digits', '٥٥٥٥٥٥٥٥٥٥٥٥٤٤٤٤'],
  ['inside a longer run of digits', `12${PAN}34`],
  ['American Express, spaced 4-6-5', CARDS.amex.spaced],
];

/** What a stored string would hold if any disguise got through: its digits, whatever their script. */
const digitsOf = (text: string) =>
  text.normalize('NFKC').replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660)).replace(/\D/g, '');

describe.each(storageKinds())('card numbers in free text on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let token: string;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'attack-free-text' });
    shop = await createMerchant(vault);
    const created = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()) } });
    token = created.body.token;
  });
  afterAll(() => vault?.close());

  const count = async (table: string) => (await vault.vault.db.query<{ n: number }>(`select count(*)::int as n from ${table}`)).rows[0]!.n;
  const STORED = ['tokens', 'payments', 'merchants', 'sessions', 'idempotency_keys'];
  const counts = async () => Object.fromEntries(await Promise.all(STORED.map(async (t) => [t, await count(t)] as const)));

  /** Refused with 422 card_number_not_allowed naming `param`, without echoing the number, and nothing is stored. */
  async function expectRefused(send: () => Promise<ApiResponse>, param: string): Promise<void> {
    const before = await counts();
    const response = await send();
    expect(response.status, response.text).toBe(422);
    expect(response.body.error).toEqual({
      type: 'invalid_request',
      code: 'card_number_not_allowed',
      message: expect.any(String),
      param,
    });
    expect(digitsOf(response.text)).not.toContain(PAN);
    expect(await counts()).toEqual(before);
  }

  /** A card-fields tokenization, prepared: its session is opened before `expectRefused` counts the rows. */
  const fromFields = async (extra: Record<string, unknown>, card = cardPlaintext()) => {
    const json = { key: shop.publishableKey, session: await openSession(vault.url, shop), card: await encryptCard(vault.url, card), ...extra };
    return () => api(vault.url, 'POST', '/v1/tokens', { json });
  };
  const fromServer = async (extra: Record<string, unknown>, card = cardPlaintext(), headers: Record<string, string> = {}) =>
    api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, card), ...extra }, headers });

  it('refuses the reproduction: the name "5555 5555 5555 4444", and keeps it out of tokens and stored idempotent responses', async () => {
    const key = `repro-${uniqueLetters()}`;
    await expectRefused(() => fromServer({}, cardPlaintext(CARDS.visa, { name: CARDS.mastercard.spaced }), { 'Idempotency-Key': key }), 'name');
    await expectRefused(await fromFields({}, cardPlaintext(CARDS.visa, { name: CARDS.mastercard.spaced })), 'name');
    const { rows } = await vault.vault.db.query('select 1 from idempotency_keys where key = $1', [key]);
    expect(rows).toEqual([]);
  });

  describe.each(DISGUISES)('a card number %s', (_disguise, text) => {
    it('in the cardholder name or postal code of the card plaintext (fields, server, bulk update)', async () => {
      await expectRefused(await fromFields({}, cardPlaintext(CARDS.visa, { name: text })), 'name');
      await expectRefused(() => fromServer({}, cardPlaintext(CARDS.visa, { name: text })), 'name');
      const update = await api(vault.url, 'PATCH', '/v1/tokens', {
        key: shop.secretKey,
        json: { tokens: [{ token, card: await encryptCard(vault.url, cardPlaintext(CARDS.visa, { name: text })) }] },
      });
      expect(update.body.results[0]).toMatchObject({ ok: false, error: { code: 'card_number_not_allowed', param: 'name' } });
      expect(digitsOf(update.text)).not.toContain(PAN);
    });

    it('in customer, value, reference and the token a payment names', async () => {
      await expectRefused(await fromFields({ customer: text }), 'customer');
      await expectRefused(() => fromServer({ customer: text }), 'customer');
      await expectRefused(() => fromServer({ value: text }), 'value');
      const pay = (json: Record<string, unknown>) =>
        api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token, amount: 100, currency: 'EUR', ...json } });
      await expectRefused(() => pay({ reference: text }), 'reference');
      await expectRefused(() => pay({ token: text }), 'token');
    });

    it("in the merchant's name, allowed origins and webhook URL", async () => {
      const create = (json: Record<string, unknown>) =>
        api(vault.url, 'POST', '/v1/merchants', { key: vault.adminKey, json: { name: 'Shop', allowed_origins: [], ...json } });
      const update = (json: Record<string, unknown>) => api(vault.url, 'PATCH', '/v1/merchant', { key: shop.secretKey, json });
      await expectRefused(() => create({ name: text }), 'name');
      await expectRefused(() => update({ name: text }), 'name');
      await expectRefused(() => create({ webhook_url: `https://shop.example/hooks?card=${text}` }), 'webhook_url');
      await expectRefused(() => update({ webhook_url: `https://shop.example/hooks/${text}` }), 'webhook_url');
      await expectRefused(() => update({ allowed_origins: [`https://${text}.shop.example`] }), 'allowed_origins.0');
    });

    it('in list filters and in a bulk item token', async () => {
      const query = encodeURIComponent(text);
      const get = (path: string) => api(vault.url, 'GET', path, { key: shop.secretKey });
      await expectRefused(() => get(`/v1/tokens?customer=${query}`), 'customer');
      await expectRefused(() => get(`/v1/tokens?starting_after=${query}`), 'starting_after');
      await expectRefused(() => get(`/v1/payments?reference=${query}`), 'reference');
      await expectRefused(() => get(`/v1/payments?token=${query}`), 'token');
      await expectRefused(() => get(`/v1/payments?starting_after=${query}`), 'starting_after');
      await expectRefused(() => get(`/v1/events?token=${query}`), 'token');
      await expectRefused(() => get(`/v1/events?payment=${query}`), 'payment');
      await expectRefused(() => api(vault.url, 'GET', `/v1/merchants?starting_after=${query}`, { key: vault.adminKey }), 'starting_after');
      const bulk = await api(vault.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json: { tokens: [{ token: text, reusable: true }] } });
      expect(bulk.body.results[0]).toEqual({ token: null, ok: false, error: expect.objectContaining({ code: 'card_number_not_allowed', param: 'token' }) });
    });

    it('in the parent origin of a card fields session and in the Idempotency-Key header', async () => {
      await expectRefused(
        () => api(vault.url, 'POST', '/v1/sessions', { json: { key: shop.publishableKey, parent_origin: `https://${text}.example` } }),
        'parent_origin',
      );
      // A header carries Latin-1 only; the others are refused as malformed before any scan.
      if (/^[\x21-\x7e ]*$/.test(text)) {
        const key = text.replaceAll(' ', '_');
        await expectRefused(() => fromServer({}, cardPlaintext(), { 'Idempotency-Key': key }), 'Idempotency-Key');
      }
    });
  });

  it('refuses a card number where a token or payment id belongs in the path, and records none in the audit log', async () => {
    await expectRefused(() => api(vault.url, 'GET', `/v1/tokens/${PAN}`, { key: shop.secretKey }), 'token');
    await expectRefused(() => api(vault.url, 'DELETE', `/v1/tokens/${PAN}`, { key: shop.secretKey }), 'token');
    await expectRefused(() => api(vault.url, 'POST', `/v1/tokens/${PAN}/verify`, { key: shop.secretKey }), 'token');
    await expectRefused(() => api(vault.url, 'GET', `/v1/payments/${PAN}`, { key: shop.secretKey }), 'id');
    for (const verb of ['capture', 'void', 'refunds']) {
      await expectRefused(() => api(vault.url, 'POST', `/v1/payments/${PAN}/${verb}`, { key: shop.secretKey, json: {} }), 'id');
    }
  });

  it('accepts ordinary free text with digits in it: names, postal codes, order references, customer ids, UUIDs', async () => {
    const created = await fromServer(
      { customer: 'cus_42 (account 2024-11)', value: `member-${uniqueLetters()}-0042` },
      cardPlaintext(CARDS.visa, { name: 'Ada Lovelace III', postal_code: '75001' }),
    );
    expect(created.status, created.text).toBe(201);
    // UUIDs whose digits, glued to letters, hold a Luhn-valid run with a brand prefix: identifiers, not card numbers.
    const uuid = await fromServer(
      { customer: '5c1d034a-3933-4679-8426-3512e81d23eb' },
      cardPlaintext(CARDS.visa),
      { 'Idempotency-Key': '5b2ffc27-6fd1-456e-b552-955294457574' },
    );
    expect(uuid.status, uuid.text).toBe(201);
    const paid = await api(vault.url, 'POST', '/v1/payments', {
      key: shop.secretKey,
      json: { token, amount: 100, currency: 'EUR', reference: 'order 2024-11-22 #1001 (12 items)' },
    });
    expect(paid.status, paid.text).toBe(201);
  });

  it('leaves no card number from any of the refused requests in any table', async () => {
    const dumps = await dumpTables(async (sql) => (await vault.vault.db.query<Record<string, unknown>>(sql)).rows);
    for (const dump of dumps) {
      for (const value of dump.values) {
        const text = typeof value === 'string' ? value : Buffer.from(value).toString('latin1');
        expect(cardDataIn(text), dump.table).toBeUndefined();
        expect(digitsOf(text).includes(PAN), dump.table).toBe(false);
      }
    }
  });
});
