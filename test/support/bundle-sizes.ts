/**
 * Where the production build puts the widget, its size budgets (widget spec,
 * "What runs where") and how they are measured: gzip level 9. Shared by the
 * budget test and the widget benchmark, so both count the same bytes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DIST = join(ROOT, 'dist');
export const LOADER = join(DIST, 'loader', 'checkout.js');
export const FIELDS_DIR = join(DIST, 'fields');
export const FIELDS_ASSETS = join(FIELDS_DIR, 'assets');
export const FIELDS_MANIFEST = join(FIELDS_DIR, '.vite', 'manifest.json');

export const LOADER_BUDGET = 2048;
export const FIELDS_BUDGET = 20_480;

export const gzipped = (path: string): number => gzipSync(readFileSync(path), { level: 9 }).length;

interface ManifestChunk {
  file: string;
  isEntry?: boolean;
  css?: string[];
  imports?: string[];
  dynamicImports?: string[];
}

/** Every file the fields entry loads (paths relative to dist/fields), following its static and dynamic imports. */
export function fieldsEntryFiles(): string[] {
  const manifest = JSON.parse(readFileSync(FIELDS_MANIFEST, 'utf8')) as Record<string, ManifestChunk>;
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
