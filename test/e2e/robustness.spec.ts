/**
 * What the card does when things around it go wrong or late: the browser
 * reloads its frame, the frame sends messages that are not the protocol's,
 * the chunks the fields load after `ready` are slow to come.
 */
import { readFileSync } from 'node:fs';
import type { Frame, Route } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import { TOKENIZE_TIMEOUT_MS } from '../../widget/shared/constants.ts';
import { expect, readToken, test } from './fixtures.ts';
import type { ShopPage } from './support/harness.ts';

/** Reloads the fields document from inside, as the browser does when it reloads a frame. */
async function reloadFrame(frame: Frame): Promise<void> {
  // The document goes away mid-call: the evaluation's own answer is lost with it.
  await frame.evaluate(() => (globalThis as unknown as { location: { reload(): void } }).location.reload()).catch(() => undefined);
}

const readyCount = async (shop: ShopPage) => (await shop.events('card', 'ready')).length;

test.describe('the browser reloads the frame', () => {
  test('the card starts over, empty and with the options it had, says so with ready and an empty change, and tokenizes again', async ({ openShop, env }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', saveCard: 'optional' });
    await shop.update('card', { locale: 'de' });
    await expect(fields.locator('html')).toHaveAttribute('lang', 'de');
    await shop.typeCard('card', CARDS.visa);
    await expect.poll(async () => (await shop.events('card', 'change')).at(-1)?.detail.complete).toBe(true);

    await reloadFrame(await shop.frame('card'));
    await expect.poll(() => readyCount(shop), { timeout: 15_000 }).toBe(2);
    // The reloaded document got the options as they were last updated, and holds nothing of the card.
    await expect(fields.locator('html')).toHaveAttribute('lang', 'de');
    await expect(fields.getByRole('checkbox', { name: 'Diese Karte für das nächste Mal speichern' })).toBeVisible();
    await expect(fields.locator('#number')).toHaveValue('');
    const events = await shop.events('card');
    const afterReload = events.slice(events.findLastIndex((event) => event.type === 'ready'));
    await expect
      .poll(async () => (await shop.events('card', 'change')).at(-1)?.detail)
      .toEqual({ complete: false, empty: true, brand: null, error: null });
    expect(afterReload[0]?.type).toBe('ready');

    await shop.typeCard('card', CARDS.mastercard);
    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: true, value: { card: { brand: 'mastercard', last4: '4444' } } });
    if (outcome.ok) expect(await readToken(env, outcome.value.token)).toMatchObject({ card: { last4: '4444' } });
  });

  test('a tokenization the reload cut off rejects with network_error at once instead of waiting out the 10 s', async ({ openShop, vaultDoor }) => {
    const shop = await openShop({ vaultUrl: vaultDoor.url });
    await shop.mountReady('card', { mode: 'payment' });
    await shop.typeCard('card', CARDS.visa);
    vaultDoor.stall();
    const sent = shop.page.waitForRequest((request) => request.method() === 'POST' && new URL(request.url()).pathname === '/v1/tokens');
    const tokenizing = shop.tokenize('card');
    // The request is held at the vault's door; the frame reloads while it waits.
    await sent;
    await reloadFrame(await shop.frame('card'));
    const outcome = await tokenizing;
    expect(outcome).toMatchObject({ ok: false, error: { code: 'network_error' } });
    expect(outcome.ms).toBeLessThan(TOKENIZE_TIMEOUT_MS - 2_000);
    await vaultDoor.reopen();
    await expect.poll(() => readyCount(shop), { timeout: 15_000 }).toBe(2);
  });
});

/**
 * A fields document of the test's own in place of the vault's (same origin,
 * same URL): it says hello like the real one, then sends `messages` on the
 * port it is handed, one by one.
 */
function fakeFieldsDocument(parentOrigin: string, messages: unknown[]): string {
  return `<!doctype html><html><body><script>
    addEventListener('message', (event) => {
      const port = event.ports[0];
      if (!port) return;
      for (const message of ${JSON.stringify(messages)}) port.postMessage(message);
    });
    parent.postMessage({ v: 1, type: 'tessera:hello', channel: location.hash.slice(1) }, ${JSON.stringify(parentOrigin)});
  </script></body></html>`;
}

test('the loader passes on only the messages whose shape it knows, and only their known keys', async ({ openShop, env, page }) => {
  const token = { token: 'tok_from_the_fake_frame', reusable: false, card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2040 } };
  const messages: unknown[] = [
    null,
    'ready',
    42,
    { type: 'bogus' },
    { type: 'ready' },
    { type: 'change', complete: 'yes', empty: false, brand: null, error: null },
    { type: 'change', complete: true, empty: false, brand: 7, error: null },
    { type: 'change', complete: true, empty: false, brand: null, error: { code: 5 } },
    { type: 'change', complete: true, empty: false, brand: 'visa', error: null, keystrokes: 12 },
    { type: 'focus', field: 'password' },
    { type: 'focus', field: 'cvc', value: 'x' },
    { type: 'resize', height: '300' },
    { type: 'resize', height: Number.NaN },
    { type: 'resize', height: 123 },
    { type: 'result', id: 0, ok: true },
    { type: 'result', id: 0, ok: false, error: 'refused' },
    { type: 'result', id: '0', ok: true, value: token },
    { type: 'result', id: 0, ok: true, value: token },
  ];
  await page.route(
    (url) => url.pathname === '/v1/fields',
    (route: Route) => route.fulfill({ contentType: 'text/html', body: fakeFieldsDocument(env.merchantSite.origin, messages) }),
  );
  const shop = await openShop();
  await shop.mount('card', { mode: 'payment' });
  await expect.poll(() => shop.events('card', 'submit')).toHaveLength(1);

  expect((await shop.events('card')).map(({ type, detail }) => [type, detail])).toEqual([
    ['ready', null],
    ['change', { complete: true, empty: false, brand: 'visa', error: null }],
    ['focus', { field: 'cvc' }],
    ['resize', { height: 123 }],
    ['submit', { ok: true, value: token }],
  ]);
  await expect(page.locator('#card iframe')).toHaveCSS('height', '123px');
});

test('the fields say ready before the typing rules and the tokenizer have loaded, and a card typed meanwhile is formatted and tokenized once they arrive', async ({
  openShop,
  page,
}) => {
  const held: Route[] = [];
  let holding = true;
  await page.route(
    (url) => /^\/v1\/assets\/assets\/(rules|tokenizer)-/.test(url.pathname),
    (route) => (holding ? void held.push(route) : route.fallback()),
  );
  const shop = await openShop();
  const fields = await shop.mountReady('card', { mode: 'payment' });
  await expect.poll(() => held.length, { message: 'both chunks are asked for after ready' }).toBe(2);

  // The shopper types before the rules are here: the input waits for them, then is formatted as usual.
  await fields.locator('#number').pressSequentially(CARDS.visa.number);
  const tokenizing = shop.tokenize('card');
  holding = false;
  for (const route of held) await route.fallback();
  await expect(fields.locator('#number')).toHaveValue(CARDS.visa.spaced);
  expect(await tokenizing).toMatchObject({ ok: false, error: { code: 'validation_error', param: 'expiry' } });
  await fields.locator('#expiry').pressSequentially('1240');
  await fields.locator('#cvc').pressSequentially(CARDS.visa.cvc);
  expect(await shop.tokenize('card')).toMatchObject({ ok: true, value: { card: { last4: '4242' } } });
});

/** How many requests for `path` the vault has logged so far. */
function vaultRequests(logFile: string, path: string): number {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; path?: string })
    .filter((entry) => entry.msg === 'request' && entry.path?.startsWith(path)).length;
}

test('a card mounted again after destroy() loads its fields document and scripts from the browser cache, not from the vault', async ({ openShop, env }) => {
  const shop = await openShop();
  await shop.mountReady('card', { mode: 'payment' });
  await shop.typeCard('card', CARDS.visa);
  const [documents, assets] = [vaultRequests(env.vault.logFile, '/v1/fields'), vaultRequests(env.vault.logFile, '/v1/assets/')];
  expect(documents).toBeGreaterThan(0);

  await shop.destroy('card');
  await shop.mountReady('card-again', { mode: 'signup' });
  await shop.typeCard('card-again', CARDS.mastercard);
  expect(await shop.tokenize('card-again')).toMatchObject({ ok: true, value: { reusable: true } });
  expect(vaultRequests(env.vault.logFile, '/v1/fields'), 'fields documents the vault served').toBe(documents);
  expect(vaultRequests(env.vault.logFile, '/v1/assets/'), 'scripts and stylesheets the vault served').toBe(assets);
});

test('Tessera() called in <head>, before <body> exists, loads the fields early, and mount() later takes that frame as it is', async ({ page, env }) => {
  await page.goto(`${env.pageUrl(env.merchantSite, 'early.html')}&pk=${env.merchant.publishableKey}`);
  // The hidden frame sits under the root until a card is mounted; the fields document is already loaded in it.
  await expect(page.locator('html > iframe[hidden]')).toHaveCount(1);
  await expect(page.locator('html > iframe[hidden]').contentFrame().locator('#tessera-config')).toBeAttached();
  const frame = await (await page.locator('html > iframe[hidden]').elementHandle())!.contentFrame();
  const loadedAt = await frame!.evaluate(() => (globalThis as any).performance.timeOrigin as number);

  await page.evaluate(() => {
    const w = globalThis as any;
    const card = w.tessera.card({ mode: 'signup' });
    card.on('ready', () => w.events.push('ready'));
    card.mount('#card');
  });
  await expect.poll(() => page.evaluate(() => (globalThis as any).events)).toEqual(['ready']);
  await expect(page.locator('html > iframe')).toHaveCount(0);
  const fields = page.locator('#card iframe').contentFrame();
  await expect(fields.getByRole('group', { name: 'Save card' })).toBeAttached();
  await expect(page.locator('#card iframe')).toBeVisible();
  // Moved, not reloaded: the same document, loaded before mount().
  const mounted = await (await page.locator('#card iframe').elementHandle())!.contentFrame();
  expect(await mounted!.evaluate(() => (globalThis as any).performance.timeOrigin as number)).toBe(loadedAt);
});
