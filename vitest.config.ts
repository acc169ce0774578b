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
  projects: [
    { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
    { extends: true, test: { name: 'api', include: ['test/api/**/*.test.ts'] } },
    { extends: true, test: { name: 'leaks', include: ['test/leaks/**/*.test.ts'] } },
  ],
};

export default defineConfig({ test });
