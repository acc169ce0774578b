/**
 * The warm frame: checkout.js, once the page's markup is parsed and if no
 * card was made by then, frames the vault's keyless `/v1/fields/warm`
 * hidden, which starts the vault site's renderer process and fetches the
 * fields' script and stylesheet. It
 * goes once a card's frame has loaded, or after `WARM_FRAME_MS` with no card,
 * and nothing of it reaches the merchant's page.
 */
import type { Frame, Page } from '@playwright/test';
import { WARM_FRAME_MS } from '../../widget/shared/constants.ts';
import { expect, test, type SpyEntry } from './fixtures.ts';

const warmUrlOf = (vaultUrl: string) => `${vaultUrl}/v1/fields/warm`;

const warmFrameOf = (page: Page, vaultUrl: string): Frame | undefined => page.frames().find((frame) => frame.url() === warmUrlOf(vaultUrl));

/** What the spy saw of the warm frame: anything it posted, and anything any window received from the vault before a card existed. */
const fromWarmFrame = (spy: SpyEntry[], warmUrl: string) => spy.filter((entry) => entry.at === warmUrl);

test('a page that includes checkout.js gets a hidden, keyless vault frame before any Tessera() call, which fetched the fields script and stylesheet and goes once a card has loaded', async ({
  openShop,
  page,
  env,
  spy,
}) => {
  const shop = await openShop();
  const warmUrl = warmUrlOf(env.vault.url);
  const fieldsAssets = env.vault.vault.deps.widget.fields!;

  // No Tessera() call yet (shop.html calls it only to mount): the page's only frame is the warm one.
  expect(page.frames().map((frame) => frame.url())).toEqual([page.url(), warmUrl]);
  const element = page.locator('iframe');
  await expect(element).toHaveCount(1);
  await expect(element).toHaveAttribute('src', warmUrl);
  await expect(element).toBeHidden();
  const warm = warmFrameOf(page, env.vault.url)!;
  expect(await warm.evaluate(() => (globalThis as any).origin)).toBe(env.vault.url);
  const fetched = await warm.evaluate(() => (globalThis as any).performance.getEntriesByType('resource').map((entry: { name: string }) => new URL(entry.name).pathname));
  expect(fetched).toEqual(expect.arrayContaining([fieldsAssets.script, ...fieldsAssets.styles]));
  // It runs nothing, so it posts nothing, and the page has received no message at all.
  expect(await warm.evaluate(() => (globalThis as any).document.scripts.length)).toBe(0);
  expect(spy.filter((entry) => entry.kind === 'received')).toEqual([]);
  expect(fromWarmFrame(spy, warmUrl)).toEqual([]);

  // A card's frame has loaded: the warm frame is gone, from the DOM and from the page's frames.
  await shop.mountReady('card', { mode: 'payment' });
  await expect(page.locator(`iframe[src="${warmUrl}"]`)).toHaveCount(0);
  expect(warmFrameOf(page, env.vault.url)).toBeUndefined();
  expect(fromWarmFrame(spy, warmUrl)).toEqual([]);
  // What the page did receive came from the card's own frame, the fields document.
  expect(spy.filter((entry) => entry.kind === 'received' && entry.via === 'window' && entry.origin === env.vault.url).length).toBeGreaterThan(0);
});

test(`with no card made, the warm frame goes after ${WARM_FRAME_MS / 1000} s`, async ({ openShop, page, env }) => {
  // The page's clock stands still unless the test moves it: however long the page takes to load, its 30 s start at checkout.js.
  await page.clock.install({ time: 0 });
  await page.clock.pauseAt(1_000);
  await openShop();
  const warm = page.locator(`iframe[src="${warmUrlOf(env.vault.url)}"]`);
  await expect(warm).toHaveCount(1);
  await page.clock.runFor(WARM_FRAME_MS - 1_000);
  await expect(warm).toHaveCount(1);
  await page.clock.runFor(1_000);
  await expect(warm).toHaveCount(0);
  expect(warmFrameOf(page, env.vault.url)).toBeUndefined();
});

test("a page that calls Tessera() as it loads gets no warm frame: its card's own frame starts the renderer", async ({ page, env }) => {
  const warmRequests: string[] = [];
  page.on('request', (request) => {
    if (request.url() === warmUrlOf(env.vault.url)) warmRequests.push(request.url());
  });
  await page.goto(`${env.pageUrl(env.merchantSite, 'early.html')}&pk=${env.merchant.publishableKey}`);
  // Loaded: the page's DOMContentLoaded, when the warm frame would have been made, is behind us.
  await expect(page.locator('html > iframe[hidden]').contentFrame().locator('#tessera-config')).toBeAttached();
  await expect(page.locator(`iframe[src="${warmUrlOf(env.vault.url)}"]`)).toHaveCount(0);
  expect(warmRequests).toEqual([]);
});
