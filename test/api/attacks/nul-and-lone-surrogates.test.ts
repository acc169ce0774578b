import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, countTokens, createMerchant, type TestMerchant } from '../../support/api.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/**
 * Review finding: a NUL (`\u0000`) in a parameter got past validation and
 * made PostgreSQL fail, so the vault answered 500 (`GET /v1/tokens/%00`,
 * a merchant `name` with a NUL), and an unpaired surrogate (`\ud800`) was
 * silently stored as U+FFFD. Every such string is now refused with 400
 * `parameter_invalid`, in bodies (values and keys, at any depth), query
 * strings, path segments and the Idempotency-Key header.
 */
const BAD_TEXT = [
  ['a NUL', '\\u0000'],
  ['an unpaired high surrogate', '\\ud800'],
  ['an unpaired low surrogate', '\\udc00'],
] as const;

type Caller = 'admin' | 'secret' | 'none';

describe.each(storageKinds())('NUL and unpaired surrogates on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'attack-nul' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const keyOf = (caller: Caller) => (caller === 'admin' ? vault.adminKey : caller === 'secret' ? shop.secretKey : undefined);
  const countMerchants = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from merchants')).rows[0]!.n;

  /** Sends a raw JSON body (so escapes reach the vault as written) and checks the refusal and that nothing was stored. */
  async function expectRefused(caller: Caller, method: string, path: string, body: string | undefined, param: string | undefined) {
    const [tokensBefore, merchantsBefore] = [await countTokens(vault), await countMerchants()];
    const key = keyOf(caller);
    const response = await api(vault.url, method, path, {
      ...(key === undefined ? {} : { key }),
      ...(body === undefined ? {} : { raw: body, contentType: 'application/json' }),
    });
    expect({ status: response.status, code: response.body?.error?.code, param: response.body?.error?.param }).toEqual({
      status: 400,
      code: 'parameter_invalid',
      param,
    });
    expect([await countTokens(vault), await countMerchants()]).toEqual([tokensBefore, merchantsBefore]);
  }

  describe.each(BAD_TEXT)('%s in a JSON body', (_name, bad) => {
    it.each<[string, Caller, string, string, string, string | undefined]>([
      ['merchant creation, a value', 'admin', 'POST', '/v1/merchants', `{"name":"Shop${bad}"}`, 'name'],
      ['merchant creation, an array item', 'admin', 'POST', '/v1/merchants', `{"name":"Shop","allowed_origins":["https://a.example","https://b${bad}.example"]}`, 'allowed_origins.1'],
      ['merchant creation, a key', 'admin', 'POST', '/v1/merchants', `{"name":"Shop","x${bad}":1}`, undefined],
      ['key rotation, a key', 'admin', 'POST', '/v1/keys/rotate', `{"grace${bad}":1}`, undefined],
      ['merchant settings, a value', 'secret', 'PATCH', '/v1/merchant', `{"name":"Shop${bad}"}`, 'name'],
      ['a session from the fields', 'none', 'POST', '/v1/sessions', `{"key":"pk_test_x","parent_origin":"https://shop.example${bad}"}`, 'parent_origin'],
      ['a token from the merchant server', 'secret', 'POST', '/v1/tokens', `{"card":"x","customer":"cus_${bad}"}`, 'customer'],
      ['a token value', 'secret', 'POST', '/v1/tokens', `{"card":"x","value":"v${bad}"}`, 'value'],
      ['a bulk update item, a value', 'secret', 'PATCH', '/v1/tokens', `{"tokens":[{"token":"tok_a","reusable":true},{"token":"tok_${bad}","reusable":true}]}`, 'tokens.1.token'],
      ['a bulk update item, a key', 'secret', 'PATCH', '/v1/tokens', `{"tokens":[{"token":"tok_a","re${bad}":true}]}`, 'tokens.0'],
      ['a payment reference', 'secret', 'POST', '/v1/payments', `{"token":"tok_a","amount":100,"currency":"EUR","reference":"order${bad}"}`, 'reference'],
      ['a capture, deep inside an unknown object', 'secret', 'POST', '/v1/payments/pay_a/capture', `{"amount":{"a":[{"b":"${bad}"}]}}`, 'amount.a.0.b'],
    ])('is refused in %s', async (_what, caller, method, path, body, param) => {
      await expectRefused(caller, method, path, body, param);
    });
  });

  it.each<[string, Caller, string, string]>([
    ['a token lookup', 'secret', '/v1/tokens?customer=cus_%00', 'customer'],
    ['a payment lookup', 'secret', '/v1/payments?reference=order%00', 'reference'],
    ['the audit log', 'secret', '/v1/events?token=tok_%00', 'token'],
    ['the merchant list', 'admin', '/v1/merchants?starting_after=mer_%00', 'starting_after'],
    ['the fields document', 'none', '/v1/fields?key=pk_test_x&origin=https%3A%2F%2Fshop.example%00', 'origin'],
    ['the fields status', 'none', '/v1/fields/status?key=pk_test_%00', 'key'],
  ])('refuses a NUL in a query value of %s', async (_what, caller, path, param) => {
    await expectRefused(caller, 'GET', path, undefined, param);
  });

  it('refuses a NUL in a query parameter name, without echoing the name', async () => {
    await expectRefused('secret', 'GET', '/v1/tokens?cus%00tomer=a', undefined, undefined);
  });

  it.each<[string, Caller, string, string]>([
    ['GET', 'secret', '/v1/tokens/%00', 'a NUL'],
    ['GET', 'secret', '/v1/tokens/tok_%00abc', 'a NUL inside a token name'],
    ['DELETE', 'secret', '/v1/tokens/tok_%00', 'a NUL'],
    ['POST', 'secret', '/v1/tokens/tok_%00/verify', 'a NUL'],
    ['GET', 'secret', '/v1/payments/pay_%00', 'a NUL'],
    ['POST', 'secret', '/v1/payments/pay_%00/void', 'a NUL'],
    ['GET', 'secret', '/v1/tokens/tok_%ED%A0%80', 'the UTF-8 bytes of a surrogate'],
    ['GET', 'secret', '/v1/tokens/tok_%E0%A4%A', 'a broken percent-encoding'],
    ['GET', 'none', '/v1/assets/%00.js', 'a NUL in an asset name'],
    ['GET', 'none', '/v1/no-such-endpoint/%00', 'a NUL on an unknown path'],
  ])('refuses %s %s (%s in a path segment)', async (method, caller, path) => {
    await expectRefused(caller, method, path, undefined, undefined);
  });

  it('answers a NUL in the Idempotency-Key header with 400, and keeps serving', async () => {
    const { port } = new URL(vault.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.write(
        `POST /v1/keys/rotate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${vault.adminKey}\r\n` +
          `Idempotency-Key: key\u0000one\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect((await api(vault.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('still accepts well-formed text: a surrogate pair (an emoji) and accented letters', async () => {
    const response = await api(vault.url, 'POST', '/v1/merchants', {
      key: vault.adminKey,
      raw: '{"name":"Shop \\ud83d\\uded2 caf\\u00e9"}',
      contentType: 'application/json',
    });
    expect(response.status).toBe(201);
    expect(response.body.name).toBe('Shop \u{1f6d2} café');
  });
});
