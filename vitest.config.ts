import { join } from 'node:path';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
import type { TestUserConfig } from 'vitest/node';
import { withBundledModuleUrls } from './test/support/bundle.ts';

/**
 * Four projects, run by `npm test` (test/run.ts) in this order: `unit` and `api`
 * together, then `api-alone` one file at a time, then `leaks` alone, after
 * everything else, so that nothing else running can disturb what the leak
 * checks observe.
 *
 * This file exists so that Vitest never loads vite.config.ts, which only knows
 * the production build modes.
 */
/**
 * Most API tests spend much of their time waiting (vault processes starting,
 * PostgreSQL committing, jobs falling due), so two files run at once even on
 * two cores. The files below run after them, one at a time: they measure
 * the event loop, a server's time or how fast an outage is answered, and a
 * second file beside them would make them slow for the wrong reason.
 */
const PARALLEL = 2;
const ALONE = [
  'test/api/**/chaos*.test.ts',
  'test/api/attacks/dos-free-text.test.ts',
  'test/api/attacks/server-timeouts.test.ts',
];

const test: TestUserConfig = {
  // `leaks` runs only when selected (`--project leaks`): the command line's
  // `--project` replaces this default selection.
  project: ['unit', 'api', 'api-alone'],
  environment: 'node',
  // A worker process runs file after file rather than one new process per file: importing the
  // server's module graph again took 1.4 s of CPU per file (some 90 files), more than many files'
  // tests. The tests share no module state: no mocks, no stubbed globals, and every vault,
  // database and timer a file starts, its own hooks stop.
  isolate: false,
  // API tests start real vaults (and databases) in their hooks.
  testTimeout: 30_000,
  hookTimeout: 60_000,
  // These timeouts are timers inside the worker; a worker that can no longer run them (a
  // deadlock in native code), or a file that never finishes loading, is failed by the watchdog.
  setupFiles: ['test/support/hang-watchdog-worker.ts'],
  reporters: [
    'default',
    'test/support/hang-watchdog.ts',
    // `npm test` names a file for a JSON report, from which it prints the slowest files (test/run.ts).
    ...(process.env['TESSERA_TEST_VITEST_REPORT'] ? [['json', { outputFile: process.env['TESSERA_TEST_VITEST_REPORT'] }] satisfies [string, object]] : []),
  ],
  projects: [
    { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 }, maxWorkers: PARALLEL } },
    { extends: true, test: { name: 'api', include: ['test/api/**/*.test.ts'], exclude: ALONE, sequence: { groupOrder: 0 }, maxWorkers: PARALLEL } },
    // A fresh process each: what these files time must not include the heap the other files left.
    { extends: true, test: { name: 'api-alone', include: ALONE, sequence: { groupOrder: 1 }, maxWorkers: 1, isolate: true } },
    { extends: true, test: { name: 'leaks', include: ['test/leaks/**/*.test.ts'] } },
  ],
};

/**
 * The vaults tests start inside Vitest's workers run their worker threads
 * (PGlite's, the card decrypt pool's) from bundles, as the vault processes
 * tests start do (test/support/bundle.ts): loading the threads' TypeScript
 * through tsx cost each in-process vault about 0.9 s of CPU.
 */
const SERVER = join(import.meta.dirname, 'server') + '/';
const bundledWorkerEntries: Plugin = {
  name: 'tessera-bundled-worker-entries',
  async transform(code, id) {
    if (!id.startsWith(SERVER) || !code.includes('import.meta.url')) return null;
    const rewritten = await withBundledModuleUrls(code, id);
    return rewritten === code ? null : { code: rewritten, map: null };
  },
};

export default defineConfig({ plugins: [bundledWorkerEntries], test });
