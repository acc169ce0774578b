import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

/** A GET with exactly these headers and the body as it came over the wire (fetch would decompress it). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

const DECODE: Record<string, (body: Buffer) => Buffer> = { br: brotliDecompressSync, gzip: gunzipSync, identity: (body) => body };

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
    expect(response.text).not.toMatch(/<script>(?!\s*<\/script>)|<style|style="/);
    const config = JSON.parse(/<script type="application\/json" id="tessera-config">(.*?)<\/script>/s.exec(response.text)![1]!);
    expect(config).toEqual({
      publishableKey: shop.publishableKey,
      parentOrigin: 'https://shop.example',
      jwks: { keys: [expect.objectContaining({ kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', use: 'enc' })] },
    });
  });

  it('names the fields script and stylesheet in a Link header, so the browser fetches them while it commits the document', async () => {
    const response = await api(vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent('https://shop.example')}`);
    const { script, styles } = vault.vault.deps.widget.fields!;
    expect(styles).toHaveLength(1);
    expect(response.headers.get('link')).toBe(`<${script}>; rel=modulepreload, <${styles[0]}>; rel=preload; as=style`);
    // The same files the document loads: a preload of anything else would be a second download.
    expect(response.text).toContain(`<script type="module" src="${script}"></script>`);
    expect(response.text).toContain(`<link rel="preload" as="style" href="${styles[0]}">`);
  });

  it('sends no Link header with a refusal, which loads no fields', async () => {
    const response = await api(vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent('https://evil.example')}`);
    expect(response.status).toBe(403);
    expect(response.headers.get('link')).toBeNull();
  });

  it('lets browsers keep the fields document for 5 minutes, the same for every visit: the fields open their session themselves', async () => {
    const path = `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent('https://shop.example')}`;
    const [first, second] = [await api(vault.url, 'GET', path), await api(vault.url, 'GET', path)];
    expect(first.headers.get('cache-control')).toBe('public, max-age=300');
    expect(second.text).toBe(first.text);
    expect(first.text).not.toMatch(/ses_/);
  });

  it.each([
    ['an unknown publishable key', 'pk_test_000000000000000000000000', 'https://shop.example', 401],
    ['a parent origin outside allowed_origins', undefined, 'https://evil.example', 403],
    ['no parent origin', undefined, '', 403],
  ])('serves no working fields for %s, and forbids framing that page', async (_name, key, origin, status) => {
    const response = await api(vault.url, 'GET', `/v1/fields?key=${key ?? shop.publishableKey}&origin=${encodeURIComponent(origin)}`);
    expect(response.status).toBe(status);
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.text).not.toContain('tessera-config');
  });

  it('serves the warm document without a key: no script, a strict CSP, framable by any page, kept 5 minutes like checkout.js', async () => {
    const response = await api(vault.url, 'GET', '/v1/fields/warm');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *",
    );
    expect(response.headers.get('x-frame-options')).toBeNull();
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    expect(response.headers.get('set-cookie')).toBeNull();
    // Nothing runs in it and nothing of a merchant is in it: no script element, no configuration, no key.
    expect(response.text).not.toMatch(/<script|tessera-config|pk_|style=/);
    // The same document whichever page frames it.
    const elsewhere = await api(vault.url, 'GET', '/v1/fields/warm', { headers: { origin: 'https://other-shop.example', referer: 'https://other-shop.example/' } });
    expect(elsewhere.text).toBe(response.text);
  });

  it("has the warm document fetch the fields' current script and stylesheet, in its markup and its Link header", async () => {
    const response = await api(vault.url, 'GET', '/v1/fields/warm');
    const { script, styles } = vault.vault.deps.widget.fields!;
    expect(styles).toHaveLength(1);
    expect(response.text).toContain(`<link rel="modulepreload" href="${script}">`);
    expect(response.text).toContain(`<link rel="stylesheet" href="${styles[0]}">`);
    expect(response.headers.get('link')).toBe(`<${script}>; rel=modulepreload, <${styles[0]}>; rel=preload; as=style`);
    // The very files the fields document loads, so the card's frame finds them in the cache.
    const fields = await api(vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent('https://shop.example')}`);
    expect(fields.text).toContain(`<script type="module" src="${script}"></script>`);
    expect(fields.text).toContain(`href="${styles[0]}"`);
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
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  });

  it('serves every chunk of the fields that the build made, and nothing else from the assets folder', async () => {
    const names = [...vault.vault.deps.widget.assets.keys()].map((path) => path.replace('/v1/assets/assets/', ''));
    // The entry, its stylesheet, ten locales but English, the typing rules, the tokenizer, the merchant style;
    // and the hosted payment page's script and stylesheet, from the same build.
    expect(names.filter((name) => /^(ar|de|es|fr|he|it|ja|nl|pt)-/.test(name))).toHaveLength(9);
    expect(names.filter((name) => /^(rules|tokenizer|merchant-style)-.*\.js$/.test(name))).toHaveLength(3);
    expect(names.filter((name) => /^fields-.*\.(js|css)$/.test(name))).toHaveLength(2);
    expect(names.filter((name) => /^pay-.*\.(js|css)$/.test(name))).toHaveLength(2);
    expect(names).toHaveLength(9 + 3 + 2 + 2);
    for (const path of ['/v1/assets/nothing-here.js', '/v1/assets/.vite', `${vault.vault.deps.widget.fields!.script}.br`]) {
      expect([path, (await api(vault.url, 'GET', path)).status]).toEqual([path, 404]);
    }
  });

  const scripts = () => [
    ['checkout.js', '/v1/checkout.js'],
    ['the fields entry', vault.vault.deps.widget.fields!.script],
    ['the fields stylesheet', vault.vault.deps.widget.fields!.styles[0]!],
  ];

  it.each([
    ['gzip, deflate, br, zstd', 'br'],
    ['br;q=0.5, gzip', 'gzip'],
    ['gzip', 'gzip'],
    ['deflate', 'identity'],
    ['', 'identity'],
  ])('answers Accept-Encoding "%s" with the build\'s %s copy, and says it varies by Accept-Encoding', async (acceptEncoding, expected) => {
    for (const [what, path] of scripts()) {
      const plain = await rawGet(`${vault.url}${path}`, {});
      const response = await rawGet(`${vault.url}${path}`, acceptEncoding ? { 'accept-encoding': acceptEncoding } : {});
      expect([what, response.status, response.headers['content-encoding'] ?? 'identity']).toEqual([what, 200, expected]);
      expect(response.headers['vary']).toMatch(/accept-encoding/i);
      expect(response.headers['content-length']).toBe(String(response.body.length));
      expect(DECODE[expected]!(response.body).equals(plain.body), `${what} decodes to the file`).toBe(true);
      if (expected !== 'identity') expect(response.body.length, `${what} is smaller compressed`).toBeLessThan(plain.body.length);
    }
  });

  it('keeps the immutable, content-hashed checkout.js compressed too', async () => {
    const sri = await api(vault.url, 'GET', '/v1/sri.json');
    const response = await rawGet(`${vault.url}${sri.body['checkout.js'].url}`, { 'accept-encoding': 'br' });
    expect(response.headers['content-encoding']).toBe('br');
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(sri.body['checkout.js'].integrity).toBe(`sha384-${createHash('sha384').update(brotliDecompressSync(response.body)).digest('base64')}`);
  });

  // Last: it rotates the vault's transport key.
  it('embeds the key a rotation brings in in the fields documents it serves from then on, within a second', async () => {
    const embeddedKid = async () => {
      const response = await api(vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent('https://shop.example')}`);
      return JSON.parse(/<script type="application\/json" id="tessera-config">(.*?)<\/script>/s.exec(response.text)![1]!).jwks.keys[0].kid as string;
    };
    const before = await embeddedKid();
    const rotated = await api(vault.url, 'POST', '/v1/keys/rotate', { key: vault.adminKey, json: {} });
    expect(rotated.status).toBe(201);
    expect(rotated.body.retired).toEqual([before]);
    await expect.poll(embeddedKid, { timeout: 5_000 }).toBe(rotated.body.kid);
  });
});
