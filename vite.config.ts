import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig, type Plugin, type UserConfig } from 'vite';

/**
 * One config, four builds (selected with `--mode`):
 * - `loader`: `checkout.js`, the dependency-free script merchants embed (IIFE);
 *   `loader-esm`: `tessera.mjs`, the ES module for bundlers (run after `loader`).
 * - `fields`: the Lit component and its encryption, loaded by the fields
 *   document the vault renders (`/v1/fields`), and the hosted payment page's
 *   script; the vault reads the manifest.
 * - `demo`: the demo storefront's pages.
 *
 * No build writes source maps: the vault serves `dist/` to anyone, and a map
 * would hand out the widget's original sources and comments.
 */
const root = import.meta.dirname;

/**
 * Types for bundlers beside tessera.mjs: tsc emits the loader's declarations
 * (with the shared protocol types they use) under dist/loader/types, and
 * `tessera.d.mts` re-exports them. Imports are rewritten from `.ts` to `.js`,
 * which is how a declaration file names its siblings.
 */
const loaderDeclarations = (): Plugin => ({
  name: 'tessera:loader-declarations',
  apply: 'build',
  closeBundle() {
    const outDir = resolve(root, 'dist/loader/types');
    execFileSync(process.execPath, [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', resolve(root, 'widget/loader/tsconfig.declarations.json')], { stdio: 'inherit' });
    for (const file of readdirSync(outDir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.d.ts'))) {
      const path = join(outDir, file);
      writeFileSync(path, readFileSync(path, 'utf8').replace(/(from '\.{1,2}\/[^']+)\.ts'/g, "$1.js'"));
    }
    writeFileSync(resolve(root, 'dist/loader/tessera.d.mts'), "export * from './types/loader/esm.js';\n");
  },
});

const builds: Record<string, UserConfig> = {
  loader: {
    publicDir: false,
    build: {
      outDir: resolve(root, 'dist/loader'),
      emptyOutDir: true,
      target: 'es2020',
      sourcemap: false,
      lib: {
        entry: resolve(root, 'widget/loader/checkout.ts'),
        formats: ['iife'],
        name: 'TesseraLoader',
        fileName: () => 'checkout.js',
      },
    },
  },
  'loader-esm': {
    publicDir: false,
    plugins: [loaderDeclarations()],
    build: {
      outDir: resolve(root, 'dist/loader'),
      emptyOutDir: false,
      target: 'es2020',
      sourcemap: false,
      lib: {
        entry: resolve(root, 'widget/loader/esm.ts'),
        formats: ['es'],
        fileName: () => 'tessera.mjs',
      },
    },
  },
  fields: {
    publicDir: false,
    base: '/v1/assets/',
    build: {
      outDir: resolve(root, 'dist/fields'),
      emptyOutDir: true,
      target: 'es2022',
      manifest: true,
      sourcemap: false,
      modulePreload: false,
      rollupOptions: {
        // The hosted payment page (/pay/plink_…) is served from the vault's origin beside the fields.
        input: { fields: resolve(root, 'widget/fields/main.ts'), pay: resolve(root, 'widget/pay/main.ts') },
      },
    },
  },
  demo: {
    root: resolve(root, 'demo/pages'),
    publicDir: false,
    build: {
      outDir: resolve(root, 'dist/demo'),
      emptyOutDir: true,
      rollupOptions: {
        input: Object.fromEntries(
          ['index', 'cart', 'checkout', 'signup', 'login', 'account', 'dashboard'].map((page) => [page, resolve(root, `demo/pages/${page}.html`)]),
        ),
      },
    },
  },
};

export default defineConfig(({ mode }) => {
  const build = builds[mode];
  if (!build) throw new Error(`vite: unknown build mode "${mode}" (expected one of ${Object.keys(builds).join(', ')})`);
  return { ...build, clearScreen: false, logLevel: 'warn' };
});
