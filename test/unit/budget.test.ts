/**
 * Size budgets of the production build (widget spec, "What runs where"):
 * checkout.js ≤ 2 KB gzip, and all the JS and CSS of the fields document
 * ≤ 20 KB gzip. Reads dist/, which `npm test` builds before the tests.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FIELDS_ASSETS,
  FIELDS_BUDGET,
  FIELDS_MANIFEST,
  LOADER,
  LOADER_BUDGET,
  ROOT,
  fieldsEntryFiles,
  gzipped,
} from '../support/bundle-sizes.ts';

function requireBuild(path: string): void {
  if (!existsSync(path)) throw new Error(`${relative(ROOT, path)} is missing: run \`npm run build\` first (npm test does).`);
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
    const entryFiles = fieldsEntryFiles();
    expect(entryFiles.length, 'the fields manifest has an entry').toBeGreaterThan(0);
    expect(entryFiles.map((file) => file.replace(/^assets\//, '')).filter((name) => !assets.includes(name)), 'manifest files missing from dist/fields/assets').toEqual([]);

    const sizes = assets.map((name) => ({ name, bytes: gzipped(join(FIELDS_ASSETS, name)) }));
    const total = sizes.reduce((sum, { bytes }) => sum + bytes, 0);
    const breakdown = sizes.map(({ name, bytes }) => `${name} ${bytes}`).join(', ');
    expect(total, `the fields' JS and CSS are ${total} bytes gzipped (level 9): ${breakdown}; the budget is ${FIELDS_BUDGET}`).toBeLessThanOrEqual(FIELDS_BUDGET);
  });
});
