import { defineConfig } from 'vitest/config';
import type { TestUserConfig } from 'vitest/node';

/**
 * Three projects, run by `npm test` (test/run.ts) in this order: `unit` and `api`
 * together, then `leaks` alone, after everything else, so that nothing else
 * running can disturb what the leak checks observe.
 *
 * This file exists so that Vitest never loads vite.config.ts, which only knows
 * the production build modes.
 */
const test: TestUserConfig = {
  // `leaks` runs only when selected (`--project leaks`): the command line's
  // `--project` replaces this default selection.
  project: ['unit', 'api'],
  environment: 'node',
  // API tests start real vaults (and databases) in their hooks.
  testTimeout: 30_000,
  hookTimeout: 60_000,
  // These timeouts are timers inside the worker; a worker that can no longer run them (a
  // deadlock in native code), or a file that never finishes loading, is failed by the watchdog.
  setupFiles: ['test/support/hang-watchdog-worker.ts'],
  reporters: ['default', 'test/support/hang-watchdog.ts'],
  projects: [
    { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
    { extends: true, test: { name: 'api', include: ['test/api/**/*.test.ts'] } },
    { extends: true, test: { name: 'leaks', include: ['test/leaks/**/*.test.ts'] } },
  ],
};

export default defineConfig({ test });
