/**
 * Fixtures for the end-to-end tests.
 *
 * Per worker: a real vault (`startTestVault`, its data folder and log under
 * `TESSERA_TEST_ARTIFACTS` for the leak scan), a merchant whose
 * `allowed_origins` is the merchant site, and two page servers for
 * test/e2e/pages/ — the merchant site at `http://localhost:P2` and another
 * site at `http://127.0.0.1:P3`. The vault is at `http://127.0.0.1:P1`:
 * three different origins.
 *
 * Per test: every page and frame runs pages/spy.js, and when the test ends
 * the messages it recorded are audited (see `auditMessages`): no
 * `postMessage` to `'*'`, and no card data in any message a merchant-side
 * window received. That makes the audit part of every test in the suite.
 */
import { test as base, expect, type Page } from '@playwright/test';
import { join } from 'node:path';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';
import { cardDataIn } from './support/card-data.ts';
import { ShopPage } from './support/harness.ts';
import { openVaultDoor, startPageServer, type PageServer, type VaultDoor } from './support/servers.ts';

export { expect };

export interface ShopEnvironment {
  vault: TestVault;
  merchant: TestMerchant;
  /** The merchant's own site, the one origin in its `allowed_origins`. */
  merchantSite: PageServer;
  /** A site on another origin that the merchant does not allow. */
  otherSite: PageServer;
  /** A page of test/e2e/pages on `site` that loads checkout.js from `vaultUrl`. */
  pageUrl(site: PageServer, page: string, vaultUrl?: string): string;
}

/** One `postMessage` call or one received message, as pages/spy.js reports it. */
export interface SpyEntry {
  kind: 'post' | 'received';
  via: 'window' | 'port';
  /** For window posts: the target origin the caller gave (`/` when it gave none). */
  targetOrigin?: string | null;
  /** For received window messages: the sender's origin. */
  origin?: string;
  /** The message, as JSON. */
  data: string;
  /** Script locations of the caller, for failure messages. */
  caller?: string;
  /** The URL of the window that made the call or received the message. */
  at: string;
}

interface OpenShopOptions {
  site?: PageServer;
  vaultUrl?: string;
  /** Another page of the same context (a second tab), instead of the test's `page`. */
  on?: Page;
}

interface TestFixtures {
  /** Everything pages/spy.js recorded in this test, in order. */
  spy: SpyEntry[];
  /** Opens pages/shop.html (by default on the merchant site, with the worker's vault). */
  openShop(options?: OpenShopOptions): Promise<ShopPage>;
  /** A second, switchable way into the worker's vault (its own origin); see `openVaultDoor`. */
  vaultDoor: VaultDoor;
}

interface WorkerFixtures {
  env: ShopEnvironment;
}

const SPY_SCRIPT = join(import.meta.dirname, 'pages', 'spy.js');

/** The fields document is the vault's `/v1/fields`, whichever way into the vault served it. */
export const isFieldsDocument = (url: string): boolean => URL.canParse(url) && new URL(url).pathname === '/v1/fields';

/** Failure messages for every rule a recorded message broke. */
export function auditMessages(entries: SpyEntry[]): string[] {
  const problems: string[] = [];
  for (const entry of entries) {
    if (entry.kind === 'post' && entry.targetOrigin === '*') {
      problems.push(`postMessage to '*' from ${entry.at} (${entry.caller ?? 'unknown caller'})`);
    }
    if (entry.kind === 'received' && !isFieldsDocument(entry.at)) {
      let data: unknown = entry.data;
      try {
        data = JSON.parse(entry.data);
      } catch {
        // Not JSON (spy.js could not serialize it): scan the text itself.
      }
      const found = cardDataIn(data);
      if (found !== undefined) problems.push(`${found} in a ${entry.via} message received by ${entry.at}`);
    }
  }
  return problems;
}

export const test = base.extend<TestFixtures, WorkerFixtures>({
  env: [
    async ({}, use) => {
      const merchantSite = await startPageServer('localhost');
      const otherSite = await startPageServer('127.0.0.1');
      let vault: TestVault | undefined;
      try {
        vault = await startTestVault({ name: 'e2e' });
        if (vault.vault.deps.widget.checkout === undefined || vault.vault.deps.widget.fields === undefined) {
          throw new Error('dist/ has no widget build: run `npm run build` first (npm test does).');
        }
        const merchant = await createMerchant(vault, { name: 'E2E Shop', allowedOrigins: [merchantSite.origin] });
        const vaultUrl = vault.url;
        await use({
          vault,
          merchant,
          merchantSite,
          otherSite,
          pageUrl: (site, page, url = vaultUrl) => `${site.origin}/${page}?vault=${encodeURIComponent(url)}`,
        });
      } finally {
        await vault?.close();
        await merchantSite.close();
        await otherSite.close();
      }
    },
    { scope: 'worker', timeout: 60_000 },
  ],

  spy: async ({}, use) => {
    await use([]);
  },

  context: async ({ context, spy }, use) => {
    await context.exposeBinding('__tesseraSpy', (_source, entry: SpyEntry) => void spy.push(entry));
    await context.addInitScript({ path: SPY_SCRIPT });
    await use(context);
    // Let calls still on their way from the pages arrive before judging them.
    await Promise.all(context.pages().map((page) => page.evaluate('0').catch(() => undefined)));
    expect(auditMessages(spy), 'every postMessage names its target, and no merchant-side window receives card data').toEqual([]);
  },

  openShop: async ({ page, env }, use) => {
    await use(async ({ site = env.merchantSite, vaultUrl = env.vault.url, on = page } = {}) => {
      await on.goto(env.pageUrl(site, 'shop.html', vaultUrl));
      return new ShopPage(on, vaultUrl, env.merchant.publishableKey);
    });
  },

  vaultDoor: async ({ env }, use) => {
    const door = await openVaultDoor(env.vault.vault.app);
    await use(door);
    await door.dispose();
  },
});

/** The token as the merchant's server sees it, with its secret key. */
export async function readToken(env: ShopEnvironment, token: string): Promise<any> {
  const response = await api(env.vault.url, 'GET', `/v1/tokens/${encodeURIComponent(token)}`, { key: env.merchant.secretKey });
  expect(response.status, `GET /v1/tokens/${token}: ${response.text}`).toBe(200);
  return response.body;
}
