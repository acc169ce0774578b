/**
 * Size budgets of the production build (issue #15): checkout.js ≤ 2 KB gzip;
 * the fields' code before `ready` ≤ 14 KB gzip; all the fields' JS and CSS
 * ≤ 24 KB gzip. Reads dist/, which `npm test` builds before the tests.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FIELDS_DIR,
  FIELDS_MANIFEST,
  FIELDS_READY_BUDGET,
  FIELDS_TOTAL_BUDGET,
  LOADER,
  LOADER_BUDGET,
  ROOT,
  fieldsAllFiles,
  fieldsChunk,
  fieldsLazyChunks,
  fieldsReadyFiles,
  gzipped,
} from '../support/bundle-sizes.ts';

/** The widget spec's "all its JS and CSS ≤ 20 KB gzip" for the fields document, which one card's loads still meet. */
const WIDGET_SPEC_FIELDS_BUDGET = 20 * 1024;

function requireBuild(path: string): void {
  if (!existsSync(path)) throw new Error(`${relative(ROOT, path)} is missing: run \`npm run build\` first (npm test does).`);
}

/** Gzip bytes of `files` (relative to dist/fields), with a breakdown for failure messages. */
function measure(files: string[]): { total: number; breakdown: string } {
  const sizes = files.map((file) => ({ file: file.replace(/^assets\//, ''), bytes: gzipped(join(FIELDS_DIR, file)) }));
  return { total: sizes.reduce((sum, { bytes }) => sum + bytes, 0), breakdown: sizes.map(({ file, bytes }) => `${file} ${bytes}`).join(', ') };
}

describe('size budgets of the production build', () => {
  it('checkout.js is at most 2 KB gzipped', () => {
    requireBuild(LOADER);
    const size = gzipped(LOADER);
    expect(size, `dist/loader/checkout.js is ${size} bytes gzipped (level 9); the budget is ${LOADER_BUDGET}`).toBeLessThanOrEqual(LOADER_BUDGET);
  });

  it('what the fields load before ready, JS and CSS, is at most 14 KB gzipped', () => {
    requireBuild(FIELDS_MANIFEST);
    const files = fieldsReadyFiles();
    expect(files.filter((file) => file.endsWith('.js')), 'the entry script').toHaveLength(1);
    expect(files.filter((file) => file.endsWith('.css')), 'its stylesheet').toHaveLength(1);
    const { total, breakdown } = measure(files);
    expect(total, `before ready: ${breakdown} = ${total} bytes gzipped; the budget is ${FIELDS_READY_BUDGET}`).toBeLessThanOrEqual(FIELDS_READY_BUDGET);
  });

  it('the code a card with a merchant style runs before ready (the entry, then the style chunk) is at most 14 KB gzipped', () => {
    requireBuild(FIELDS_MANIFEST);
    const files = [...fieldsReadyFiles().filter((file) => file.endsWith('.js')), fieldsChunk('widget/fields/merchant-style.ts')];
    const { total, breakdown } = measure(files);
    expect(total, `a styled card before ready: ${breakdown} = ${total} bytes gzipped; the budget is ${FIELDS_READY_BUDGET}`).toBeLessThanOrEqual(FIELDS_READY_BUDGET);
  });

  it('loads the typing rules, the tokenizer, the merchant style and the nine locales besides English lazily, each on its own', () => {
    requireBuild(FIELDS_MANIFEST);
    const lazy = Object.keys(fieldsLazyChunks()).sort();
    expect(lazy).toEqual(
      [
        'widget/fields/merchant-style.ts',
        'widget/fields/rules.ts',
        'widget/fields/tokenizer.ts',
        ...['ar', 'de', 'es', 'fr', 'he', 'it', 'ja', 'nl', 'pt'].map((lang) => `widget/fields/i18n/${lang}.ts`),
      ].sort(),
    );
    // None of them is part of what loads before ready.
    expect(fieldsReadyFiles().filter((file) => Object.values(fieldsLazyChunks()).includes(file))).toEqual([]);
  });

  it('everything one card ever loads (the entry, the rules, the tokenizer, a merchant style, the largest locale) stays within the widget spec’s 20 KB gzip', () => {
    requireBuild(FIELDS_MANIFEST);
    const lazy = fieldsLazyChunks();
    const locales = Object.entries(lazy).filter(([source]) => source.includes('/i18n/')).map(([, file]) => file);
    const largestLocale = locales.reduce((largest, file) => (measure([file]).total > measure([largest]).total ? file : largest));
    const files = [
      ...fieldsReadyFiles(),
      lazy['widget/fields/rules.ts']!,
      lazy['widget/fields/tokenizer.ts']!,
      lazy['widget/fields/merchant-style.ts']!,
      largestLocale,
    ];
    const { total, breakdown } = measure(files);
    expect(total, `one card at most: ${breakdown} = ${total} bytes gzipped; the widget spec allows ${WIDGET_SPEC_FIELDS_BUDGET}`).toBeLessThanOrEqual(WIDGET_SPEC_FIELDS_BUDGET);
  });

  it('all JS and CSS of the fields together are at most 24 KB gzipped', () => {
    requireBuild(FIELDS_MANIFEST);
    const files = fieldsAllFiles();
    // The manifest names what the document loads; every one of those must be counted.
    const named = [...fieldsReadyFiles(), ...Object.values(fieldsLazyChunks())];
    expect(named.filter((file) => !files.includes(file)), 'manifest files missing from dist/fields/assets').toEqual([]);
    const { total, breakdown } = measure(files);
    expect(total, `the fields' JS and CSS: ${breakdown} = ${total} bytes gzipped; the budget is ${FIELDS_TOTAL_BUDGET}`).toBeLessThanOrEqual(FIELDS_TOTAL_BUDGET);
  });
});
