/**
 * Fixtures for the demo shop's journeys (test/e2e/demo-*.spec.ts).
 *
 * Per worker: a real vault on `http://127.0.0.1:P1` and the demo shop's real
 * backend (`createDemoApp`, its own PGlite database and log file under the
 * test artifacts) serving the built pages on `http://localhost:P2`, the one
 * origin the shop's merchant allows: two origins, as in production.
 *
 * The shop registers its webhook endpoint at start, as under `npm start`.
 *
 * Per test: every request the pages make to the shop's own backend, and its
 * answer, is recorded and checked for card data, secret keys and webhook
 * secrets when the test ends — except the body of a card import, which is
 * by design the merchant's own file of cards on file, sent to its own server
 * to be encrypted there (its answer is checked like any other).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { FrameLocator, Page, Request } from '@playwright/test';
import type { DemoMerchant } from '../../../demo/server/config.ts';
import { rolledSecretKeyPath } from '../../../demo/server/secret-key.ts';
import { api, createMerchant } from '../../support/api.ts';
import { SECRET_KEY } from '../../support/leaks.ts';
import { freePort } from '../../support/ports.ts';
import { DASHBOARD_PASSWORD, startTestShop, type TestShop } from '../../support/shop.ts';
import { startTestVault, type TestVault } from '../../support/vault.ts';
import { expect, test as base } from '../fixtures.ts';
import { cardDataIn } from './card-data.ts';

export { expect };

export interface DemoEnvironment {
  vault: TestVault;
  shop: TestShop;
  /** Its `secretKey` is the one the shop calls the vault with: after a roll on the dashboard, the key the shop saved. */
  merchant: DemoMerchant;
  /** `GET` on the vault with the shop's secret key: what the vault holds. */
  vaultGet(path: string): Promise<any>;
}

/** One request from the shop's pages to the shop's backend, and what came back. */
export interface ShopExchange {
  method: string;
  url: string;
  requestBody: string;
  responseBody: string;
}

/** The one request whose body may hold card numbers: the dashboard's upload of the merchant's cards on file. */
export const isCardUpload = (exchange: Pick<ShopExchange, 'method' | 'url'>) =>
  exchange.method === 'POST' && new URL(exchange.url).pathname === '/api/dashboard/card-imports';

interface DemoTestFixtures {
  /** Everything the pages sent to, and received from, the shop's own backend in this test, so far. */
  shopTraffic: { exchanges(): Promise<ShopExchange[]> };
}

export const test = base.extend<DemoTestFixtures, { demo: DemoEnvironment }>({
  demo: [
    async ({}, use) => {
      // As under `npm start`: the shop's webhook receiver is on loopback. A short retry schedule, so a failed delivery is seen failing.
      const vault = await startTestVault({ name: 'e2e-demo', env: { TESSERA_WEBHOOK_ALLOW_LOCAL: '1', TESSERA_WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,400ms' } });
      let shop: TestShop | undefined;
      try {
        // The merchant allows exactly the shop's origin, so the port is chosen before either exists.
        const port = await freePort();
        const created = await createMerchant(vault, { name: 'Demo Shop (e2e)', allowedOrigins: [`http://localhost:${port}`] });
        const savedKey = () => (shop !== undefined && existsSync(rolledSecretKeyPath(shop.dataDir)) ? readFileSync(rolledSecretKeyPath(shop.dataDir), 'utf8').trim() : undefined);
        const merchant: DemoMerchant = {
          merchantId: created.id,
          publishableKey: created.publishableKey,
          get secretKey() {
            return savedKey() ?? created.secretKey;
          },
        };
        shop = await startTestShop({ merchant, vaultUrl: vault.url, port, name: 'e2e-demo-shop' });
        const vaultGet = async (path: string) => {
          const response = await api(vault.url, 'GET', path, { key: merchant.secretKey });
          expect(response.status, `GET ${path}: ${response.text}`).toBe(200);
          return response.body;
        };
        await use({ vault, shop, merchant, vaultGet });
      } finally {
        await shop?.close();
        await vault.close();
      }
    },
    { scope: 'worker', timeout: 90_000 },
  ],

  shopTraffic: [
    async ({ context, demo }, use) => {
      const pending: Promise<ShopExchange | undefined>[] = [];
      const record = async (request: Request): Promise<ShopExchange | undefined> => {
        if (!request.url().startsWith(`${demo.shop.url}/api/`)) return undefined;
        const response = await request.response().catch(() => null);
        return {
          method: request.method(),
          url: request.url(),
          requestBody: request.postData() ?? '',
          responseBody: (await response?.text().catch(() => '')) ?? '',
        };
      };
      context.on('requestfinished', (request) => void pending.push(record(request)));
      context.on('requestfailed', (request) => void pending.push(record(request)));
      const exchanges = async () => (await Promise.all(pending)).filter((exchange) => exchange !== undefined);
      await use({ exchanges });
      const leaks = (await exchanges()).flatMap((exchange) => {
        const found = cardDataIn([exchange.url, isCardUpload(exchange) ? '' : exchange.requestBody, exchange.responseBody]);
        return found === undefined ? [] : [`${found} in ${exchange.method} ${exchange.url}`];
      });
      expect(leaks, 'no card number or CVC in any request the pages make to the shop’s backend, or in its answers').toEqual([]);
      const keys = (await exchanges()).flatMap((exchange) =>
        [exchange.url, exchange.requestBody, exchange.responseBody].some((text) => SECRET_KEY.test(text)) ? [`${exchange.method} ${exchange.url}`] : [],
      );
      expect(keys, 'no secret key or webhook secret in any request the pages make to the shop’s backend, or in its answers').toEqual([]);
    },
    { auto: true },
  ],
});

/** The card fields' iframe on a shop page. */
export const cardFields = (page: Page): FrameLocator => page.locator('#card-fields iframe').contentFrame();

/** December of next year, typed as `MMYY`. */
export const nextYearExpiry = () => `12${String((new Date().getFullYear() + 1) % 100).padStart(2, '0')}`;

/** Waits until the fields are ready (the form's button becomes active). */
export async function fieldsReady(page: Page): Promise<FrameLocator> {
  await expect(page.locator('#submit')).toHaveAttribute('aria-disabled', 'false', { timeout: 15_000 });
  return cardFields(page);
}

/** Types a card into the fields with the keyboard; `number` as the shopper would type it. */
export async function typeCard(page: Page, card: { number: string; cvc: string }, expiry = nextYearExpiry()): Promise<void> {
  const fields = await fieldsReady(page);
  await fields.locator('#number').fill('');
  await fields.locator('#number').pressSequentially(card.number);
  await fields.locator('#expiry').fill('');
  await fields.locator('#expiry').pressSequentially(expiry);
  await fields.locator('#cvc').fill('');
  await fields.locator('#cvc').pressSequentially(card.cvc);
}

/** Puts products in the cart through the catalog page, as a shopper would. */
export async function fillCart(page: Page, shopUrl: string, products: string[] = ['Tile nippers', 'Glass tesserae, cobalt (1 kg)']): Promise<void> {
  await page.goto(`${shopUrl}/`);
  for (const name of products) {
    await page.getByRole('listitem').filter({ has: page.getByRole('heading', { name }) }).getByRole('button', { name: 'Add to cart' }).click();
    await expect(page.getByRole('status')).toContainText(`${name} added to your cart`);
  }
}

/** Creates an account through the sign-up page; leaves the page on the "add a card" step. */
export async function signUp(page: Page, shopUrl: string): Promise<{ email: string; password: string }> {
  const account = { email: `shopper-${randomBytes(4).toString('hex')}@example.test`, password: 'mosaic-lover-1' };
  await page.goto(`${shopUrl}/signup.html`);
  await page.getByLabel('E-mail address').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('heading', { name: 'Add a card for faster checkout' })).toBeVisible();
  return account;
}

/** The shop's user id for an e-mail address (also the `customer` on the vault's tokens). */
export async function userId(demo: DemoEnvironment, email: string): Promise<string> {
  const { rows } = await demo.shop.db.query<{ id: string }>('select id from users where email = $1', [email]);
  return rows[0]!.id;
}

/** Opens the merchant dashboard, with its password unless this browser's session is signed in to it already. */
export async function openDashboard(page: Page, shopUrl: string): Promise<void> {
  await page.goto(`${shopUrl}/dashboard.html`);
  const password = page.getByLabel('Dashboard password');
  const dashboard = page.getByRole('heading', { name: 'API keys' });
  await expect(password.or(dashboard).filter({ visible: true })).toBeVisible();
  if (await password.isVisible()) {
    await password.fill(DASHBOARD_PASSWORD);
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
  }
  await expect(dashboard).toBeVisible();
}

/** The order id shown on the confirmation. */
export async function confirmedOrderId(page: Page): Promise<string> {
  await expect(page.getByRole('heading', { name: 'Thank you, your order is placed' })).toBeVisible({ timeout: 15_000 });
  return (await page.locator('#order-id').textContent()) ?? '';
}
