import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant } from '../../support/api.ts';
import { cspDirectives, SINGLE_ORIGIN } from '../../support/csp.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

/**
 * Review finding: `allowed_origins` took anything the URL parser echoes back
 * unchanged, such as `https://*` or `https://a;b.example`, and the fields
 * document puts the origin into `Content-Security-Policy: … frame-ancestors`
 * verbatim, so a merchant (or whoever holds its secret key) could let every
 * site frame the card fields, or add directives to their policy.
 */
const HOSTILE_ORIGINS = [
  'https://*',
  'https://*.shop.example',
  'https://shop.example;sandbox',
  'https://shop.example;frame-ancestors',
  'https://a,b.example',
  "https://shop.example'",
  'https://shop.example"',
  "'self'",
  '*',
  'https://shop.example https://evil.example',
  'https://shop.example\tdata:',
  'https://shop.example/path',
  'https://shop.example?q=1',
  'https://shop.example#f',
  'https://user@shop.example',
  'http://shop.example',
  'https://＊.example',
  'https://shop.example\r\nX-Injected: 1',
];

/** What the fields document's CSP lists besides `frame-ancestors`, exactly as the widget contract fixes it. */
const FIXED_DIRECTIVES = [
  ['default-src', ["'none'"]],
  ['script-src', ["'self'"]],
  ['style-src', ["'self'"]],
  ['connect-src', ["'self'"]],
  ['img-src', ["'self'", 'data:']],
  ['font-src', ["'self'"]],
  ['base-uri', ["'none'"]],
  ['form-action', ["'none'"]],
];

describe.each(storageKinds())('allowed_origins cannot reach the fields CSP as anything but one origin, on %s', (storage) => {
  let vault: TestVault;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'attack-origins' });
    if (vault.vault.deps.widget.fields === undefined) throw new Error('dist/ has no widget build: run `npm run build` first');
  });
  afterAll(() => vault?.close());

  const create = (origins: string[]) =>
    api(vault.url, 'POST', '/v1/merchants', { key: vault.adminKey, json: { name: 'Origins Shop', allowed_origins: origins } });

  it.each(HOSTILE_ORIGINS)('refuses %j at merchant creation (400 parameter_invalid, param allowed_origins.1)', async (origin) => {
    const response = await create(['https://shop.example', origin]);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_invalid', param: 'allowed_origins.1' });
  });

  it.each(HOSTILE_ORIGINS)('refuses %j in PATCH /v1/merchant and keeps the origins it had', async (origin) => {
    const merchant = await createMerchant(vault, { allowedOrigins: ['https://shop.example'] });
    const response = await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { allowed_origins: [origin] } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_invalid', param: 'allowed_origins.0' });
    const now = await api(vault.url, 'GET', '/v1/merchant', { key: merchant.secretKey });
    expect(now.body.allowed_origins).toEqual(['https://shop.example']);
  });

  it('stores origins as browsers send them (punycode, lower case, no default port) and frames the fields for exactly that one origin', async () => {
    const response = await create(['https://Bücher.Example:443', 'http://localhost:4100', 'https://[::1]:8443']);
    expect(response.status).toBe(201);
    expect(response.body.allowed_origins).toEqual(['https://xn--bcher-kva.example', 'http://localhost:4100', 'https://[::1]:8443']);
    for (const origin of response.body.allowed_origins as string[]) {
      const fields = await api(vault.url, 'GET', `/v1/fields?key=${response.body.publishable_key}&origin=${encodeURIComponent(origin)}`);
      expect(fields.status).toBe(200);
      const directives = cspDirectives(fields.headers.get('content-security-policy')!);
      expect(directives).toEqual([...FIXED_DIRECTIVES, ['frame-ancestors', [origin]]]);
      expect(origin).toMatch(SINGLE_ORIGIN);
    }
  });

  it('serves no fields for an origin stored before origins were checked strictly', async () => {
    const merchant = await createMerchant(vault, { allowedOrigins: ['https://shop.example'] });
    // As a row written by an earlier version would be; the merchant has not been looked up yet, so nothing is cached.
    await vault.vault.db.query('update merchants set allowed_origins = $1 where id = $2', [['https://*'], merchant.id]);
    const fields = await api(vault.url, 'GET', `/v1/fields?key=${merchant.publishableKey}&origin=${encodeURIComponent('https://*')}`);
    expect(fields.status).toBe(403);
    expect(fields.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});
