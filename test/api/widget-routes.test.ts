import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

/** What the vault serves for the widget (needs the production build in dist/, which `npm test` makes first). */
describe('widget routes', () => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ name: 'widget-routes' });
    shop = await createMerchant(vault, { allowedOrigins: ['https://shop.example', 'https://other-shop.example'] });
    if (vault.vault.deps.widget.checkout === undefined || vault.vault.deps.widget.fields === undefined) {
      throw new Error('dist/ has no widget build: run `npm run build` (npm test does it first)');
    }
  });
  afterAll(() => vault?.close());

  it('serves checkout.js to any origin, loadable cross-origin, with a short cache', async () => {
    const response = await api(vault.url, 'GET', '/v1/checkout.js');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('publishes an SRI hash in sri.json that matches the immutable, content-hashed copy of checkout.js', async () => {
    const sri = await api(vault.url, 'GET', '/v1/sri.json');
    expect(sri.headers.get('access-control-allow-origin')).toBe('*');
    const entry = sri.body['checkout.js'] as { url: string; integrity: string };
    expect(entry.url).toMatch(/^\/v1\/checkout\.[0-9a-f]{12}\.js$/);
    const pinned = await fetch(`${vault.url}${entry.url}`);
    const bytes = Buffer.from(await pinned.arrayBuffer());
    expect(pinned.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(entry.integrity).toBe(`sha384-${createHash('sha384').update(bytes).digest('base64')}`);
    const current = Buffer.from(await (await fetch(`${vault.url}/v1/checkout.js`)).arrayBuffer());
    expect(bytes.equals(current)).toBe(true);
  });

  it('serves the fields document with the widget CSP, framable only by the confirmed parent origin', async () => {
    const response = await api(vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent('https://shop.example')}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors https://shop.example",
    );
    expect(response.headers.get('x-frame-options')).toBeNull();
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.text).not.toMatch(/<script>(?!\s*<\/script>)|<style|style="/);
    const config = JSON.parse(/<script type="application\/json" id="tessera-config">(.*?)<\/script>/s.exec(response.text)![1]!);
    expect(config).toMatchObject({
      publishableKey: shop.publishableKey,
      parentOrigin: 'https://shop.example',
      session: { session: expect.stringMatching(/^ses_/) },
      jwks: { keys: [{ kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', use: 'enc' }] },
    });
  });

  it.each([
    ['an unknown publishable key', 'pk_test_000000000000000000000000', 'https://shop.example', 401],
    ['a parent origin outside allowed_origins', undefined, 'https://evil.example', 403],
    ['no parent origin', undefined, '', 403],
  ])('serves no working fields for %s, and forbids framing that page', async (_name, key, origin, status) => {
    const response = await api(vault.url, 'GET', `/v1/fields?key=${key ?? shop.publishableKey}&origin=${encodeURIComponent(origin)}`);
    expect(response.status).toBe(status);
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(response.text).not.toContain('tessera-config');
  });

  it('tells the loader why the fields are unavailable, judged by the Origin the browser sent', async () => {
    const status = (origin: string, key = shop.publishableKey) =>
      api(vault.url, 'GET', `/v1/fields/status?key=${key}`, { headers: { origin } });
    const allowed = await status('https://shop.example');
    expect(allowed.body).toEqual({ ok: true });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('*');
    expect((await status('https://evil.example')).body.error.code).toBe('origin_not_allowed');
    expect((await status('https://shop.example', 'pk_test_000000000000000000000000')).body.error.code).toBe('unauthenticated');
  });

  it('serves the fields bundle as immutable same-origin assets', async () => {
    const script = vault.vault.deps.widget.fields!.script;
    const response = await fetch(`${vault.url}${script}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toContain('immutable');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
  });
});
