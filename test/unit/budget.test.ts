/**
 * Size budgets of the production build (widget spec, "What runs where"):
 * checkout.js ≤ 2 KB gzip, and all the JS and CSS of the fields document
 * ≤ 20 KB gzip. Reads dist/, which `npm test` builds before the tests.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const DIST = join(ROOT, 'dist');
const LOADER = join(DIST, 'loader', 'checkout.js');
const FIELDS_ASSETS = join(DIST, 'fields', 'assets');
const FIELDS_MANIFEST = join(DIST, 'fields', '.vite', 'manifest.json');

const LOADER_BUDGET = 2048;
const FIELDS_BUDGET = 20_480;

const gzipped = (path: string): number => gzipSync(readFileSync(path), { level: 9 }).length;

function requireBuild(path: string): void {
  if (!existsSync(path)) throw new Error(`${relative(ROOT, path)} is missing: run \`npm run build\` first (npm test does).`);
}

interface ManifestChunk {
  file: string;
  isEntry?: boolean;
  css?: string[];
  imports?: string[];
  dynamicImports?: string[];
}

/** Every file the fields entry loads, following its static and dynamic imports. */
function fieldsEntryFiles(manifest: Record<string, ManifestChunk>): string[] {
  const files = new Set<string>();
  const visit = (key: string) => {
    const chunk = manifest[key];
    if (!chunk || files.has(chunk.file)) return;
    files.add(chunk.file);
    chunk.css?.forEach((css) => files.add(css));
    [...(chunk.imports ?? []), ...(chunk.dynamicImports ?? [])].forEach(visit);
  };
  Object.keys(manifest).filter((key) => manifest[key]!.isEntry).forEach(visit);
  return [...files];
}

describe('size budgets of the production build', () => {
  it('checkout.js is at most 2 KB gzipped', () => {
    requireBuild(LOADER);
    const size = gzipped(LOADER);
    expect(size, `dist/loader/checkout.js is ${size} bytes gzipped (level 9); the budget is ${LOADER_BUDGET}`).toBeLessThanOrEqual(LOADER_BUDGET);
  });

  it('all JS and CSS of the fields document together are at most 20 KB gzipped', () => {
    requireBuild(FIELDS_MANIFEST);
    const assets = readdirSync(FIELDS_ASSETS).filter((name) => /\.(js|css)$/.test(name));
    // The manifest names what the document loads; every one of those must be counted.
    const entryFiles = fieldsEntryFiles(JSON.parse(readFileSync(FIELDS_MANIFEST, 'utf8')));
    expect(entryFiles.length, 'the fields manifest has an entry').toBeGreaterThan(0);
    expect(entryFiles.map((file) => file.replace(/^assets\//, '')).filter((name) => !assets.includes(name)), 'manifest files missing from dist/fields/assets').toEqual([]);

    const sizes = assets.map((name) => ({ name, bytes: gzipped(join(FIELDS_ASSETS, name)) }));
    const total = sizes.reduce((sum, { bytes }) => sum + bytes, 0);
    const breakdown = sizes.map(({ name, bytes }) => `${name} ${bytes}`).join(', ');
    expect(total, `the fields' JS and CSS are ${total} bytes gzipped (level 9): ${breakdown}; the budget is ${FIELDS_BUDGET}`).toBeLessThanOrEqual(FIELDS_BUDGET);
  });
});
