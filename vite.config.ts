import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin, type UserConfig } from 'vite';

/**
 * One config, four builds (selected with `--mode`):
 * - `loader`: `checkout.js`, the dependency-free script merchants embed (IIFE);
 *   `loader-esm`: `tessera.mjs`, the ES module for bundlers (run after `loader`).
 * - `fields`: the Lit component, loaded by the fields document the vault
 *   renders (`/v1/fields`), the chunks it loads lazily (locales, typing
 *   rules, tokenizer, merchant style), and the hosted payment page's script;
 *   the vault reads the manifest.
 * The widget's scripts and stylesheets are also written precompressed.
 * - `demo`: the demo storefront's pages.
 *
 * No build writes source maps: the vault serves `dist/` to anyone, and a map
 * would hand out the widget's original sources and comments.
 */
const root = import.meta.dirname;

/**
 * Writes a brotli (`.br`, quality 11) and a gzip (`.gz`, level 9) copy beside
 * every script and stylesheet of the build, for the vault to serve by
 * `Accept-Encoding` without compressing anything per request.
 */
const precompress = (): Plugin => ({
  name: 'tessera:precompress',
  apply: 'build',
  writeBundle(options, bundle) {
    for (const file of Object.keys(bundle).filter((name) => /\.(m?js|css)$/.test(name))) {
      const path = join(options.dir!, file);
      const source = readFileSync(path);
      writeFileSync(`${path}.br`, brotliCompressSync(source, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: source.length } }));
      writeFileSync(`${path}.gz`, gzipSync(source, { level: 9 }));
    }
  },
});

/**
 * Vite wraps every dynamic import of a browser build in its preload helper,
 * which adds `<link rel=modulepreload>` for the chunk's imports and loads its
 * CSS; `modulePreload: false` keeps the wrapper. The fields' lazy chunks
 * (locales, typing rules, tokenizer, merchant style) import nothing that is
 * not already loaded and carry no CSS, so their imports are unwrapped and the
 * helper, unused, leaves the bundle: 0.7 KB gzip of what loads before
 * `ready`. A lazy chunk with CSS fails the build rather than lose its styles.
 */
const plainDynamicImports = (): Plugin => ({
  name: 'tessera:plain-dynamic-imports',
  apply: 'build',
  enforce: 'post',
  renderChunk: (code) => code.replace(/__vitePreload\(\(\) => (.*?), __VITE_PRELOAD__\)/g, '$1'),
  generateBundle(_options, bundle) {
    for (const chunk of Object.values(bundle)) {
      if (chunk.type === 'chunk' && !chunk.isEntry && chunk.viteMetadata?.importedCss.size) {
        this.error(`${chunk.fileName} is loaded lazily and imports CSS, which only Vite's preload helper would load`);
      }
    }
  },
});

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

/**
 * The fields' locale chunks without their keys: every locale module has
 * English's keys in English's order (a unit test checks the sources, this
 * plugin re-checks them and fails the build otherwise), so a built chunk
 * carries only its texts and rebuilds the object with `localeFromTexts`.
 * The keys repeated in nine chunks were 1.3 KB of the fields' 24 KB.
 */
const keylessLocales = (): Plugin => {
  const englishKeys = [...readFileSync(resolve(root, 'widget/fields/i18n/en.ts'), 'utf8').matchAll(/^ {2}(\w+): /gm)].map((match) => match[1]);
  return {
    name: 'tessera:keyless-locales',
    apply: 'build',
    transform(code, id) {
      const locale = /\/widget\/fields\/i18n\/([a-z]{2})\.ts$/.exec(id)?.[1];
      if (!locale || locale === 'en') return;
      const body = new RegExp(`^export const ${locale} = \\{\\n([^]*?)\\n\\};\\s*$`).exec(code.replace(/^import [^\n]*\n/gm, ''))?.[1];
      const entries = body?.split('\n').map((line) => /^\s*(\w+): ("(?:[^"\\]|\\.)*"),?$/.exec(line));
      const keys = entries?.map((entry) => entry?.[1]);
      if (!entries || JSON.stringify(keys) !== JSON.stringify(englishKeys)) {
        this.error(`${id}: a locale must have exactly English's keys, in English's order, each a plain string`);
      }
      const texts = entries.map((entry) => entry![2]).join(',');
      return `import { localeFromTexts } from './index.ts';\nexport const ${locale} = localeFromTexts([${texts}]);\n`;
    },
  };
};

const builds: Record<string, UserConfig> = {
  loader: {
    publicDir: false,
    plugins: [precompress()],
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
    plugins: [loaderDeclarations(), precompress()],
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
    plugins: [keylessLocales(), plainDynamicImports(), precompress()],
    build: {
      outDir: resolve(root, 'dist/fields'),
      emptyOutDir: true,
      target: 'es2022',
      // Browsers with light-dark(): no polyfill variables for `color-scheme` in the fields' stylesheet.
      cssTarget: ['chrome123', 'edge123', 'firefox120', 'safari17.5'],
      manifest: true,
      sourcemap: false,
      modulePreload: false,
      rollupOptions: {
        // The hosted payment page (/pay/plink_…) is served from the vault's origin beside the fields.
        input: { fields: resolve(root, 'widget/fields/main.ts'), pay: resolve(root, 'widget/pay/main.ts') },
        output: {
          /*
           * V8's explicit compile hint, first in the fields' entry script:
           * nearly every function in it runs before `ready` (Lit's template
           * engine, the component, the handshake, zod's schemas), and V8 would
           * compile each at its first call, on the main thread; with the hint
           * it compiles them as the script streams in, on a background thread.
           * After minification, which drops comments.
           */
          postBanner: (chunk) => (chunk.isEntry && chunk.name === 'fields' ? '//# allFunctionsCalledOnLoad' : ''),
        },
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
