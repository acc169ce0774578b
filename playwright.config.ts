import { join } from 'node:path';
import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, findTestChromium } from './test/support/chromium.ts';
import { artifactsDir } from './test/support/vault.ts';

/**
 * End-to-end tests of the card fields on the production build (dist/, which
 * `npm test` builds first): real Chromium, a real vault and the merchant's
 * pages on other origins, all on loopback (see test/e2e/fixtures.ts).
 *
 * Output goes under `TESSERA_TEST_ARTIFACTS`: Playwright empties its
 * `outputDir` at start, and the default (test-results/) holds the other
 * steps' artifacts, which the leak scan reads at the end of `npm test`.
 */
export default defineConfig({
  testDir: 'test/e2e',
  testMatch: '**/*.spec.ts',
  outputDir: join(artifactsDir(), 'playwright'),
  fullyParallel: true,
  workers: 2,
  forbidOnly: !!process.env['CI'],
  // A retry would hide exactly the flakiness these tests must not have.
  retries: 0,
  reporter: [['list']],
  timeout: 30_000,
  expect: { timeout: 5_000 },
  // A safety net: the suite takes about 5 minutes on a 2-core machine.
  globalTimeout: 12 * 60_000,
  use: {
    headless: true,
    browserName: 'chromium',
    launchOptions: {
      // Browser downloads are blocked where the suite runs: always the system's Chromium, its headless shell when there is one.
      executablePath: await findTestChromium(),
      args: [...CHROMIUM_ARGS],
    },
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
    trace: 'off',
    screenshot: 'only-on-failure',
  },
});
