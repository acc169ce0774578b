import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, countTokens, createMerchant, type TestMerchant } from '../../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/**
 * Issue #8, item 3: replay protection keyed on the JWE string could be
 * bypassed by re-encoding it. The last character of a base64url segment
 * whose length is not a multiple of 4 carries unused low bits; flipping
 * them gives another string that decodes to the same bytes, so one card JWE
 * made 3 tokens and one CVC JWE paid 3 times.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

interface Variant {
  jwe: string;
  segment: number;
  bit: number;
  /** Decodes to the same bytes as the original: only its encoding differs. */
  sameBytes: boolean;
}

/** Every single-bit change of the last character of every segment. */
function lastCharacterVariants(jwe: string): Variant[] {
  const segments = jwe.split('.');
  return segments.flatMap((segment, index) => {
    if (segment.length === 0) return [];
    const value = ALPHABET.indexOf(segment.at(-1)!);
    return [0, 1, 2, 3, 4, 5].map((bit) => {
      const changed = segment.slice(0, -1) + ALPHABET[value ^ (1 << bit)];
      const variant = segments.map((s, i) => (i === index ? changed : s)).join('.');
      const sameBytes = Buffer.from(changed, 'base64url').equals(Buffer.from(segment, 'base64url'));
      return { jwe: variant, segment: index, bit, sameBytes };
    });
  });
}

describe.each(storageKinds())('replayed JWEs in another encoding on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'attack-jwe-replay' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  it('refuses every single-bit variant of the last character of every segment of a used card JWE, and makes no token', async () => {
    const jwe = await encryptCard(vault.url, cardPlaintext(CARDS.visa));
    const tokenize = (card: string) => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } });
    expect((await tokenize(jwe)).status).toBe(201);
    expect((await tokenize(jwe)).body.error.code).toBe('replayed_ciphertext');

    const variants = lastCharacterVariants(jwe);
    // The reproduction needs encodings of the very same bytes: the 16-byte tag alone has four.
    expect(variants.filter((v) => v.sameBytes).length).toBeGreaterThanOrEqual(4);
    const before = await countTokens(vault);
    for (const variant of variants) {
      const response = await tokenize(variant.jwe);
      const where = `segment ${variant.segment}, bit ${variant.bit}`;
      expect(response.status, where).toBe(400);
      if (variant.sameBytes) expect(response.body.error, where).toMatchObject({ code: 'invalid_jwe', param: 'card' });
    }
    expect(await countTokens(vault)).toBe(before);
  });

  it('refuses every single-bit variant of a used card JWE in a bulk update too', async () => {
    const created = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()) } });
    const jwe = await encryptCard(vault.url, cardPlaintext(CARDS.visa, { exp_month: 6 }));
    const update = (card: string) =>
      api(vault.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json: { tokens: [{ token: created.body.token, card }] } });
    expect((await update(jwe)).body.status).toBe('SUCCESS');
    const variants = lastCharacterVariants(jwe);
    const results = [];
    for (const variant of variants) results.push((await update(variant.jwe)).body.results[0]);
    expect(results.every((result) => !result.ok)).toBe(true);
    expect(results.filter((_, i) => variants[i]!.sameBytes).map((result) => result.error.code)).toEqual(
      variants.filter((v) => v.sameBytes).map(() => 'invalid_jwe'),
    );
  });

  it('refuses every single-bit variant of the last character of every segment of a used CVC JWE, and makes no payment', async () => {
    const created = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)), reusable: true },
    });
    const token = created.body.token as string;
    const cvc = await encryptCard(vault.url, { cvc: CARDS.visa.cvc });
    const pay = (jwe: string) =>
      api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token, amount: 1999, currency: 'EUR', capture: true, cvc: jwe } });
    const payments = async () =>
      (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from payments where token = $1', [token])).rows[0]!.n;

    expect((await pay(cvc)).status).toBe(201);
    expect((await pay(cvc)).body.error.code).toBe('replayed_ciphertext');
    expect(await payments()).toBe(1);

    const variants = lastCharacterVariants(cvc);
    expect(variants.filter((v) => v.sameBytes).length).toBeGreaterThanOrEqual(4);
    for (const variant of variants) {
      const response = await pay(variant.jwe);
      const where = `segment ${variant.segment}, bit ${variant.bit}`;
      expect(response.status, where).toBe(400);
      if (variant.sameBytes) expect(response.body.error, where).toMatchObject({ code: 'invalid_jwe', param: 'cvc' });
    }
    expect(await payments()).toBe(1);
  });
});
