import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** A file of the widget build, with the compressed copies the build wrote beside it (`.br`, `.gz`). */
export interface WidgetFile {
  source: Buffer;
  br: Buffer | undefined;
  gzip: Buffer | undefined;
}

/** A script served under a content-hashed, immutable name and pinned with SRI. */
export interface PinnedScript extends WidgetFile {
  /** e.g. `checkout.3f2a9c1b7d4e.js` */
  hashedName: string;
  integrity: string;
}

export interface WidgetAssets {
  checkout: PinnedScript | undefined;
  esm: PinnedScript | undefined;
  /** URLs (under `/v1/assets/`) of the fields document's entry script and stylesheets. */
  fields: { script: string; styles: string[] } | undefined;
  /** Every script and stylesheet of the fields (the entry and the chunks it loads), by URL path (`/v1/assets/…`). */
  assets: ReadonlyMap<string, WidgetFile>;
  /** The hosted payment page's script and stylesheets (`/pay/plink_…`), from the same build (served from `assets`). */
  pay: { script: string; styles: string[] } | undefined;
}

const ManifestSchema = z.record(
  z.string(),
  z.object({ file: z.string(), isEntry: z.boolean().optional(), css: z.array(z.string()).optional() }),
);

const optional = (path: string): Buffer | undefined => (existsSync(path) ? readFileSync(path) : undefined);

function widgetFile(path: string): WidgetFile {
  return { source: readFileSync(path), br: optional(`${path}.br`), gzip: optional(`${path}.gz`) };
}

function pin(path: string, baseName: string): PinnedScript | undefined {
  if (!existsSync(path)) return undefined;
  const file = widgetFile(path);
  const short = createHash('sha256').update(file.source).digest('hex').slice(0, 12);
  return {
    ...file,
    hashedName: `${baseName}.${short}.${path.endsWith('.mjs') ? 'mjs' : 'js'}`,
    integrity: `sha384-${createHash('sha384').update(file.source).digest('base64')}`,
  };
}

/**
 * Reads the production build once at start-up (`npm run build` writes it to
 * `dist/`), into memory: the widget is a few dozen kilobytes, and every
 * request is then served without touching the disk.
 */
export function loadWidgetAssets(distDir: string): WidgetAssets {
  const fieldsDir = join(distDir, 'fields');
  const manifestPath = join(fieldsDir, '.vite', 'manifest.json');
  let fields: WidgetAssets['fields'];
  let pay: WidgetAssets['pay'];
  if (existsSync(manifestPath)) {
    const manifest = ManifestSchema.parse(JSON.parse(readFileSync(manifestPath, 'utf8')));
    const entry = (source: string) => {
      const chunk = manifest[source];
      if (chunk?.isEntry !== true) return undefined;
      return { script: `/v1/assets/${chunk.file}`, styles: (chunk.css ?? []).map((file) => `/v1/assets/${file}`) };
    };
    fields = entry('widget/fields/main.ts');
    pay = entry('widget/pay/main.ts');
  }
  const assetsDir = join(fieldsDir, 'assets');
  // Scripts and stylesheets only: nothing else the build may leave there (a source map, say) is served.
  const names = existsSync(assetsDir) ? readdirSync(assetsDir).filter((name) => /^[\w-]+\.(js|css)$/.test(name)) : [];
  return {
    pay,
    checkout: pin(join(distDir, 'loader', 'checkout.js'), 'checkout'),
    esm: pin(join(distDir, 'loader', 'tessera.mjs'), 'tessera'),
    fields,
    assets: new Map(names.map((name) => [`/v1/assets/assets/${name}`, widgetFile(join(assetsDir, name))])),
  };
}
