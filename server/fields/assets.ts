import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** A script served under a content-hashed, immutable name and pinned with SRI. */
export interface PinnedScript {
  source: Buffer;
  /** e.g. `checkout.3f2a9c1b7d4e.js` */
  hashedName: string;
  integrity: string;
}

export interface WidgetAssets {
  checkout: PinnedScript | undefined;
  esm: PinnedScript | undefined;
  /** URLs (under `/v1/assets/`) of the fields document's entry script and stylesheets. */
  fields: { script: string; styles: string[] } | undefined;
  /** The hosted payment page's script and stylesheets (`/pay/plink_…`), from the same build. */
  pay: { script: string; styles: string[] } | undefined;
  /** Folder served at `/v1/assets/`. */
  fieldsDir: string;
}

const ManifestSchema = z.record(
  z.string(),
  z.object({ file: z.string(), isEntry: z.boolean().optional(), css: z.array(z.string()).optional() }),
);

function pin(path: string, baseName: string): PinnedScript | undefined {
  if (!existsSync(path)) return undefined;
  const source = readFileSync(path);
  const short = createHash('sha256').update(source).digest('hex').slice(0, 12);
  return {
    source,
    hashedName: `${baseName}.${short}.${path.endsWith('.mjs') ? 'mjs' : 'js'}`,
    integrity: `sha384-${createHash('sha384').update(source).digest('base64')}`,
  };
}

/** Reads the production build once at start-up (`npm run build` writes it to `dist/`). */
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
  return {
    pay,
    checkout: pin(join(distDir, 'loader', 'checkout.js'), 'checkout'),
    esm: pin(join(distDir, 'loader', 'tessera.mjs'), 'tessera'),
    fields,
    fieldsDir,
  };
}
