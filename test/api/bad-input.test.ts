import { generateKeyPair, exportJWK, CompactEncrypt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, countTokens, createMerchant, openSession, type ApiResponse, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, fetchJwks, nextYear, type EncryptOptions } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

/**
 * Every bad input gets its status and stable code, and stores nothing: the
 * number of token rows is the same before and after each request.
 */
describe.each(storageKinds())('bad input on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let otherShop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'bad-input' });
    shop = await createMerchant(vault, { allowedOrigins: ['https://shop.example'] });
    otherShop = await createMerchant(vault, { allowedOrigins: ['https://other.example'] });
  });
  afterAll(() => vault?.close());

  /** Sends a request and checks that nothing was stored by it. */
  async function expectRejected(send: () => Promise<ApiResponse>, status: number, code: string): Promise<ApiResponse> {
    const before = await countTokens(vault);
    const response = await send();
    expect({ status: response.status, code: response.body?.error?.code }).toEqual({ status, code });
    expect(await countTokens(vault)).toBe(before);
    for (const card of Object.values(CARDS)) expect(response.text).not.toContain(card.number);
    return response;
  }

  const fromServer = (card: string) => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } });
  const encrypted = (plaintext: object = cardPlaintext(), options: EncryptOptions = {}) => encryptCard(vault.url, plaintext, options);

  describe('card ciphertext', () => {
    it.each([
      ['ECDH-ES (direct key agreement)', { alg: 'ECDH-ES' }],
      ['ECDH-ES+A128KW', { alg: 'ECDH-ES+A128KW' }],
      ['ECDH-ES+A192KW', { alg: 'ECDH-ES+A192KW' }],
    ])('rejects alg %s (400 invalid_jwe)', async (_name, options) => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), options)), 400, 'invalid_jwe');
    });

    it('rejects alg RSA-OAEP-256 (400 invalid_jwe)', async () => {
      const { publicKey } = await generateKeyPair('RSA-OAEP-256', { extractable: true });
      const key = { ...(await exportJWK(publicKey)), kid: (await fetchJwks(vault.url))[0]!.kid };
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { alg: 'RSA-OAEP-256', key })), 400, 'invalid_jwe');
    });

    it('rejects alg dir and A256KW with a symmetric key (400 invalid_jwe)', async () => {
      const kid = (await fetchJwks(vault.url))[0]!.kid;
      for (const [alg, enc] of [
        ['dir', 'A256GCM'],
        ['A256KW', 'A256GCM'],
      ] as const) {
        const secret = crypto.getRandomValues(new Uint8Array(32));
        const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(cardPlaintext())))
          .setProtectedHeader({ alg, enc, kid, iat: Math.floor(Date.now() / 1000) })
          .encrypt(secret);
        await expectRejected(() => fromServer(jwe), 400, 'invalid_jwe');
      }
    });

    it.each(['A128GCM', 'A192GCM', 'A256CBC-HS512', 'A128CBC-HS256'])('rejects enc %s (400 invalid_jwe)', async (enc) => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { enc })), 400, 'invalid_jwe');
    });

    it('rejects a compressed (zip) JWE (400 invalid_jwe)', async () => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { header: { zip: 'DEF' } })), 400, 'invalid_jwe');
    });

    it('rejects a JWE without kid (400 invalid_jwe) and one with an unknown kid (400 unknown_kid)', async () => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { kid: null })), 400, 'invalid_jwe');
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { kid: 'key_unknown' })), 400, 'unknown_kid');
    });

    it('rejects a JWE with one flipped ciphertext bit (400 invalid_jwe)', async () => {
      const parts = (await encrypted()).split('.');
      const ciphertext = Buffer.from(parts[3]!, 'base64url');
      ciphertext[0]! ^= 0x01;
      parts[3] = ciphertext.toString('base64url');
      await expectRejected(() => fromServer(parts.join('.')), 400, 'invalid_jwe');
    });

    it('rejects a stale iat (older than 10 minutes) and a future iat (more than 60 s ahead) as stale_ciphertext', async () => {
      const now = Math.floor(Date.now() / 1000);
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { iat: now - 11 * 60 })), 400, 'stale_ciphertext');
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { iat: now + 120 })), 400, 'stale_ciphertext');
    });

    it('rejects a JWE without iat (400 invalid_jwe)', async () => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(), { iat: null })), 400, 'invalid_jwe');
    });

    it('accepts a JWE once and rejects the same JWE the second time (409 replayed_ciphertext)', async () => {
      const jwe = await encrypted();
      expect((await fromServer(jwe)).status).toBe(201);
      await expectRejected(() => fromServer(jwe), 409, 'replayed_ciphertext');
    });

    it('rejects a JWE over 8 KiB before decrypting it (400 invalid_jwe)', async () => {
      const padded = await encrypted(cardPlaintext({ number: CARDS.visa.number, cvc: CARDS.visa.cvc }, { name: 'A'.repeat(6000) }));
      expect(padded.length).toBeGreaterThan(8 * 1024);
      const response = await expectRejected(() => fromServer(padded), 400, 'invalid_jwe');
      expect(response.body.error.message).toContain('8 KiB');
    });

    it('rejects text that is not a compact JWE (400 invalid_jwe)', async () => {
      await expectRejected(() => fromServer('not-a-jwe'), 400, 'invalid_jwe');
    });
  });

  describe('request body', () => {
    it('rejects a body over the limit (413 body_too_large)', async () => {
      await expectRejected(
        () => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: 'x'.repeat(100 * 1024) } }),
        413,
        'body_too_large',
      );
    });

    it('rejects a body that is not JSON by content type (415 unsupported_media_type)', async () => {
      await expectRejected(
        () => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, raw: 'card=abc', contentType: 'application/x-www-form-urlencoded' }),
        415,
        'unsupported_media_type',
      );
      await expectRejected(
        () => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, raw: '{"card":"x"}', contentType: 'text/plain' }),
        415,
        'unsupported_media_type',
      );
    });

    it('rejects broken JSON (400 invalid_json) without echoing any of it', async () => {
      const broken = `{"card": "${CARDS.visa.number}", `;
      const response = await expectRejected(
        () => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, raw: broken, contentType: 'application/json' }),
        400,
        'invalid_json',
      );
      expect(response.text).not.toContain('4242');
    });

    it('rejects unknown top-level parameters (400 parameter_unknown)', async () => {
      await expectRejected(
        async () => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encrypted(), number: CARDS.visa.number } }),
        400,
        'parameter_unknown',
      );
    });
  });

  describe('decrypted card data', () => {
    it('rejects a __proto__ key in the plaintext (400 parameter_invalid)', async () => {
      const raw = new TextEncoder().encode(
        `{"number":"${CARDS.visa.number}","exp_month":12,"exp_year":${nextYear()},"cvc":"${CARDS.visa.cvc}","__proto__":{"admin":true}}`,
      );
      await expectRejected(async () => fromServer(await encrypted({}, { rawPlaintext: raw })), 400, 'parameter_invalid');
    });

    it('rejects an unknown key in the plaintext (400 parameter_invalid)', async () => {
      await expectRejected(async () => fromServer(await encrypted({ ...cardPlaintext(), track2: 'x' })), 400, 'parameter_invalid');
    });

    it('rejects plaintext that is not JSON, or has wrong types (400 parameter_invalid)', async () => {
      await expectRejected(async () => fromServer(await encrypted({}, { rawPlaintext: new TextEncoder().encode('4242') })), 400, 'parameter_invalid');
      await expectRejected(async () => fromServer(await encrypted({ ...cardPlaintext(), exp_month: '12' })), 400, 'parameter_invalid');
      await expectRejected(async () => fromServer(await encrypted({ ...cardPlaintext(), number: 4242424242424242 })), 400, 'parameter_invalid');
    });

    it.each([
      ['a Luhn failure', { number: '4242424242424241' }],
      ['11 digits', { number: '42424242424' }],
      ['20 digits', { number: '42424242424242424242' }],
      ['a spaced number', { number: CARDS.visa.spaced }],
    ])('rejects %s (422 invalid_card_number)', async (_name, overrides) => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(CARDS.visa, overrides))), 422, 'invalid_card_number');
    });

    it('rejects month 13 and month 0 (422 invalid_expiry)', async () => {
      for (const exp_month of [13, 0]) {
        await expectRejected(async () => fromServer(await encrypted(cardPlaintext(CARDS.visa, { exp_month }))), 422, 'invalid_expiry');
      }
    });

    it('rejects an expired card (422 card_expired) but accepts one expiring this month', async () => {
      const now = new Date();
      const lastMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
      await expectRejected(
        async () =>
          fromServer(await encrypted(cardPlaintext(CARDS.visa, { exp_month: lastMonth.getUTCMonth() + 1, exp_year: lastMonth.getUTCFullYear() }))),
        422,
        'card_expired',
      );
      const thisMonth = await fromServer(
        await encrypted(cardPlaintext(CARDS.visa, { exp_month: now.getUTCMonth() + 1, exp_year: now.getUTCFullYear() })),
      );
      expect(thisMonth.status).toBe(201);
    });

    it('rejects a 3-digit Amex CVC and a 4-digit Visa CVC (422 invalid_cvc)', async () => {
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(CARDS.amex, { cvc: '739' }))), 422, 'invalid_cvc');
      await expectRejected(async () => fromServer(await encrypted(cardPlaintext(CARDS.visa, { cvc: CARDS.amex.cvc }))), 422, 'invalid_cvc');
    });
  });

  describe('card fields form (publishable key)', () => {
    const fromFields = async (merchant: TestMerchant, session: string, card?: string) =>
      api(vault.url, 'POST', '/v1/tokens', {
        json: { key: merchant.publishableKey, session, card: card ?? (await encrypted()), reusable: true },
      });

    it('rejects an unknown publishable key (401 unauthenticated)', async () => {
      const session = await openSession(vault.url, shop);
      await expectRejected(
        async () => api(vault.url, 'POST', '/v1/tokens', { json: { key: 'pk_test_000000000000000000000000', session, card: await encrypted() } }),
        401,
        'unauthenticated',
      );
      const opened = await api(vault.url, 'POST', '/v1/sessions', {
        json: { key: 'pk_test_000000000000000000000000', parent_origin: 'https://shop.example' },
      });
      expect({ status: opened.status, code: opened.body.error.code }).toEqual({ status: 401, code: 'unauthenticated' });
    });

    it("rejects a session opened with another merchant's key (400 session_invalid)", async () => {
      const othersSession = await openSession(vault.url, otherShop);
      await expectRejected(() => fromFields(shop, othersSession), 400, 'session_invalid');
    });

    it('refuses to open a session for a parent origin not in allowed_origins (403 origin_not_allowed)', async () => {
      const response = await api(vault.url, 'POST', '/v1/sessions', {
        json: { key: shop.publishableKey, parent_origin: 'https://evil.example' },
      });
      expect(response.status).toBe(403);
      expect(response.body.error.code).toBe('origin_not_allowed');
    });

    it('allows 20 tokens in one session and refuses the 21st (429 rate_limited with Retry-After)', async () => {
      const session = await openSession(vault.url, shop);
      for (let i = 0; i < 20; i++) expect((await fromFields(shop, session)).status).toBe(201);
      const response = await expectRejected(() => fromFields(shop, session), 429, 'rate_limited');
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    });

    it('does not let a publishable key in the Authorization header create tokens (403 secret_key_required)', async () => {
      await expectRejected(
        async () => api(vault.url, 'POST', '/v1/tokens', { key: shop.publishableKey, json: { card: await encrypted() } }),
        403,
        'secret_key_required',
      );
    });
  });
});
