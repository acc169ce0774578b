/**
 * Where the production build puts the widget, its size budgets (issue #15:
 * loader ≤ 2 KB; the fields' code before `ready` ≤ 14 KB; all of the fields'
 * JS and CSS ≤ 24 KB) and how they are measured: gzip level 9 of each file.
 * Shared by the budget test and the widget benchmark, so both count the same
 * bytes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DIST = join(ROOT, 'dist');
export const LOADER = join(DIST, 'loader', 'checkout.js');
export const FIELDS_DIR = join(DIST, 'fields');
export const FIELDS_ASSETS = join(FIELDS_DIR, 'assets');
export const FIELDS_MANIFEST = join(FIELDS_DIR, '.vite', 'manifest.json');

export const LOADER_BUDGET = 2048;
/** What the fields load before `ready`. */
export const FIELDS_READY_BUDGET = 14 * 1024;
/** Every script and stylesheet of the fields, whatever loads when. */
export const FIELDS_TOTAL_BUDGET = 24 * 1024;

export const gzipped = (path: string): number => gzipSync(readFileSync(path), { level: 9 }).length;

interface ManifestChunk {
  file: string;
  src?: string;
  isEntry?: boolean;
  css?: string[];
  imports?: string[];
  dynamicImports?: string[];
}

const manifest = (): Record<string, ManifestChunk> => JSON.parse(readFileSync(FIELDS_MANIFEST, 'utf8')) as Record<string, ManifestChunk>;

/** The files (paths relative to dist/fields) that loading `keys` brings in: each chunk, its CSS and its static imports. */
function closure(chunks: Record<string, ManifestChunk>, keys: string[]): string[] {
  const files = new Set<string>();
  const visit = (key: string) => {
    const chunk = chunks[key];
    if (!chunk || files.has(chunk.file)) return;
    files.add(chunk.file);
    chunk.css?.forEach((css) => files.add(css));
    chunk.imports?.forEach(visit);
  };
  keys.forEach(visit);
  return [...files];
}

/** The card fields' entry. The build has another, the hosted payment page's (`widget/pay/`), outside the fields' budgets. */
const FIELDS_ENTRY = 'widget/fields/main.ts';

/** What the fields document loads before it can say `ready`: the entry, its static imports and its CSS. */
export function fieldsReadyFiles(): string[] {
  return closure(manifest(), [FIELDS_ENTRY]);
}

/** The lazily loaded chunk built from `source` (e.g. `widget/fields/merchant-style.ts`), relative to dist/fields. */
export function fieldsChunk(source: string): string {
  const chunk = manifest()[source];
  if (!chunk) throw new Error(`the fields manifest has no chunk for ${source}`);
  return chunk.file;
}

/** The chunks the entry loads with `import()`, by source file, relative to dist/fields. */
export function fieldsLazyChunks(): Record<string, string> {
  const chunks = manifest();
  const entry = chunks[FIELDS_ENTRY];
  return Object.fromEntries((entry?.dynamicImports ?? []).map((key) => [key, chunks[key]!.file]));
}

/** Every script and stylesheet of the fields in dist/fields/assets (not the payment page's), relative to dist/fields. */
export function fieldsAllFiles(): string[] {
  const chunks = manifest();
  const fields = new Set(closure(chunks, Object.keys(chunks).filter((key) => !key.startsWith('widget/pay/'))));
  const payPage = closure(chunks, Object.keys(chunks).filter((key) => key.startsWith('widget/pay/'))).filter((file) => !fields.has(file));
  return readdirSync(FIELDS_ASSETS)
    .filter((name) => /\.(js|css)$/.test(name))
    .map((name) => `assets/${name}`)
    .filter((file) => !payPage.includes(file));
}
