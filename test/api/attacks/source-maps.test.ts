import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWidgetAssets } from '../../../server/fields/assets.ts';
import { api, createMerchant, type TestMerchant } from '../../support/api.ts';
import { DIST, FIELDS_DIR, ROOT } from '../../support/bundle-sizes.ts';
import { startTestVault, type TestVault } from '../../support/vault.ts';

/**
 * Review finding: the production build wrote source maps (`checkout.js.map`,
 * `tessera.mjs.map`, and a "hidden" map beside the fields bundle in
 * dist/fields/assets), the loader's scripts pointed at theirs with a
 * `sourceMappingURL` comment, and the vault's static route served
 * `/v1/assets/fields-….js.map` to anyone: the widget's original sources and
 * comments, handed out with every deployment. Reads dist/, which
 * `npm run build` (and `npm test`, before the tests) writes.
 */
function builtFiles(): string[] {
  if (!existsSync(FIELDS_DIR)) throw new Error(`${relative(ROOT, FIELDS_DIR)} is missing: run \`npm run build\` first (npm test does).`);
  return readdirSync(DIST, { recursive: true, encoding: 'utf8' }).map((name) => join(DIST, name));
}

describe('the production build', () => {
  it('contains no source map', () => {
    expect(builtFiles().filter((path) => path.endsWith('.map')).map((path) => relative(DIST, path))).toEqual([]);
  });

  it('contains no script that points at a source map', () => {
    const scripts = builtFiles().filter((path) => /\.(m?js|css)$/.test(path));
    expect(scripts.length).toBeGreaterThan(3);
    expect(scripts.filter((path) => /sourceMappingURL/.test(readFileSync(path, 'utf8'))).map((path) => relative(DIST, path))).toEqual([]);
  });
});

describe('the vault serving the widget', () => {
  let vault: TestVault;
  let shop: TestMerchant;
  let entry: string;
  let dist: string;

  beforeAll(async () => {
    // A copy of the build with a map left in it, as a debugging build would leave one.
    dist = join(tmpdir(), `tessera-dist-with-map-${randomBytes(4).toString('hex')}`);
    cpSync(DIST, dist, { recursive: true });
    const widget = loadWidgetAssets(dist);
    if (widget.fields === undefined || widget.checkout === undefined) throw new Error('dist/ has no widget build: run `npm run build` first');
    entry = widget.fields.script;
    writeFileSync(join(dist, 'fields', `${entry.replace('/v1/assets/', '')}.map`), '{"version":3,"sources":["card-fields.ts"]}');
    vault = await startTestVault({ name: 'attack-source-maps', widget });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  it('answers 404 for a source map, even one present in its assets folder', async () => {
    for (const path of [`${entry}.map`, `${entry}.MAP`, '/v1/assets/anything.js.map', '/v1/checkout.js.map', '/v1/tessera.mjs.map']) {
      const response = await api(vault.url, 'GET', path);
      expect([path, response.status]).toEqual([path, 404]);
      expect(response.text).not.toContain('card-fields.ts');
    }
  });

  it('serves every script of the widget without a sourceMappingURL comment', async () => {
    const fields = await api(vault.url, 'GET', `/v1/fields?key=${shop.publishableKey}&origin=${encodeURIComponent(shop.allowedOrigins[0]!)}`);
    const sri = await api(vault.url, 'GET', '/v1/sri.json');
    const scripts = [
      '/v1/checkout.js',
      '/v1/tessera.mjs',
      sri.body['checkout.js'].url,
      entry,
      ...[...fields.text.matchAll(/(?:src|href)="(\/v1\/assets\/[^"]+)"/g)].map((match) => match[1]!),
    ];
    for (const path of scripts) {
      const response = await api(vault.url, 'GET', path);
      expect([path, response.status]).toEqual([path, 200]);
      expect(response.text, path).not.toMatch(/sourceMappingURL/);
      expect(response.headers.get('sourcemap') ?? response.headers.get('x-sourcemap')).toBeNull();
    }
  });
});
