import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * The processes tests start (`npm run vault`, job-vault.ts, the CLI) run as
 * one JavaScript file bundled from the working tree, not through tsx's
 * loader: tsx resolving and transpiling the server's two hundred modules cost
 * every start about a second of CPU, and the suite starts some ninety.
 *
 * It is the same code: bundled on first use in each test process, from the
 * files as they are then, with the packages left to Node (so PGlite finds its
 * WebAssembly) and each module's `import.meta` kept its own (the migrations
 * folder, dist/).
 *
 * The vault's worker threads (the PGlite thread, the card decrypt pool's)
 * are bundles too: each `new URL('./x.ts', import.meta.url)` in our code
 * names a module that runs elsewhere, a worker thread's entry, and is
 * pointed at that module's bundle (`withBundledModuleUrls`), as Vite does
 * for worker URLs. A thread loading its TypeScript through tsx's loader
 * instead (server/lib/workers.ts) spent about 0.9 s of CPU on it, in every
 * vault: the processes' and the in-process ones of Vitest's workers, where
 * vitest.config.ts applies the same rewrite.
 */
const bundles = new Map<string, Promise<string>>();
/** Inside the repository, so that Node finds the packages the bundle leaves out in node_modules/. */
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 'tessera-test-bundles');

/** The bundle of `entry` (a path from the repository root), built once per test process. */
export function bundled(entry: string): Promise<string> {
  let bundle = bundles.get(entry);
  if (bundle === undefined) {
    bundle = buildBundle(entry);
    bundle.catch(() => bundles.delete(entry));
    bundles.set(entry, bundle);
  }
  return bundle;
}

/**
 * Named by its contents: test processes building the same code share one
 * file, and none is left behind per process (Vitest ends its workers with a
 * signal, so an exit handler would not run).
 */
async function buildBundle(entry: string): Promise<string> {
  const { outputFiles } = await build({
    entryPoints: [join(ROOT, entry)],
    outfile: join(OUT_DIR, 'bundle.mjs'),
    write: false,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    plugins: [ownImportMeta],
  });
  const code = outputFiles[0]!.contents;
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const file = join(OUT_DIR, `${entry.replace(/[^A-Za-z0-9]+/g, '-')}-${hash}.mjs`);
  if (!existsSync(file)) {
    mkdirSync(OUT_DIR, { recursive: true });
    // Written aside and renamed: another process may be starting the same bundle at this moment.
    const building = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
    writeFileSync(building, code);
    renameSync(building, file);
  }
  return file;
}

/** `new URL('./x.ts', import.meta.url)`: one of our modules that runs elsewhere (in this code base, a worker thread's entry). */
const MODULE_URL = /new URL\((['"])(\.\.?\/[^'"]+\.ts)\1, import\.meta\.url\)/g;

/**
 * `code` (of the file `file`) with each `new URL('./x.ts', import.meta.url)`
 * naming the bundle of x.ts instead, built on first use (server/lib/workers.ts
 * runs a JavaScript entry as it is).
 */
export async function withBundledModuleUrls(code: string, file: string): Promise<string> {
  const entries = [...new Set(Array.from(code.matchAll(MODULE_URL), (match) => match[2]!))];
  const urls = new Map<string, string>();
  for (const entry of entries) urls.set(entry, pathToFileURL(await bundled(relative(ROOT, resolve(dirname(file), entry)))).href);
  return code.replace(MODULE_URL, (_, _quote, entry: string) => `new URL(${JSON.stringify(urls.get(entry))})`);
}

/**
 * Each of our modules sees its own file in `import.meta`, not the bundle's,
 * except where it names a worker thread's entry, which is bundled too.
 */
const ownImportMeta: Plugin = {
  name: 'own-import-meta',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
      if (path.includes('/node_modules/')) return undefined;
      const contents = (await withBundledModuleUrls(readFileSync(path, 'utf8'), path))
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(path)))
        .replaceAll('import.meta.filename', JSON.stringify(path))
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(path).href));
      return { contents, loader: 'ts' };
    });
  },
};
