/**
 * The isolation between the merchant page and the fields: the same-origin
 * policy, CSP frame-ancestors, the vault's refusals, the message checks on
 * both sides, and the spy and audit that every test runs under.
 */
import { CARDS } from '../support/cards.ts';
import { auditMessages, expect, isFieldsDocument, readToken, test, type SpyEntry } from './fixtures.ts';
import { READY_TIMEOUT_MS } from './support/harness.ts';

/** `forger` as pages/forger.js defines it, in a frame of another origin. */
type ForgerWindow = {
  forger: {
    postToParent(message: unknown, targetOrigin: string): void;
    postInitToSibling(index: number, targetOrigin: string, channel: string): void;
    received(): unknown[];
  };
};

const messagesOfType = (spy: SpyEntry[], kind: SpyEntry['kind'], type: string) =>
  spy.filter((entry) => entry.kind === kind && entry.data.includes(`"type":"${type}"`));

test.describe('what the merchant page can and cannot do', () => {
  test('the merchant page cannot read the fields document', async ({ openShop }) => {
    const shop = await openShop();
    await shop.mountReady('card');
    expect(await shop.readFrameDocument('card')).toEqual({ contentDocument: 'null', viaWindow: 'SecurityError' });
  });

  test('a page on an origin outside allowed_origins gets no fields and an origin_not_allowed error event', async ({ openShop, env }) => {
    const shop = await openShop({ site: env.otherSite });
    await shop.mount('card', { mode: 'payment' });
    await expect
      .poll(() => shop.events('card', 'error'), { timeout: READY_TIMEOUT_MS })
      .toEqual([{ type: 'error', detail: expect.objectContaining({ name: 'TesseraError', code: 'origin_not_allowed', isError: true }) }]);
    expect(await shop.events('card', 'ready')).toEqual([]);
    // The vault answered with `frame-ancestors 'none'`, and the browser showed its error page instead.
    const frame = await shop.frame('card');
    await expect.poll(() => frame.url()).toMatch(/^chrome-error:/);
    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: false, error: { code: 'origin_not_allowed' } });
  });

  test('CSP frame-ancestors keeps working fields out of a page that claims an allowed origin it is not on', async ({ openShop, env, page }) => {
    const claimed = encodeURIComponent(env.merchantSite.origin);
    const src = `${env.vault.url}/v1/fields?key=${env.merchant.publishableKey}&origin=${claimed}#forged-channel`;

    // The merchant's own page may frame that very URL: the control.
    const shop = await openShop();
    await shop.addFrame('direct', src);
    await expect(page.locator('#direct').contentFrame().locator('#tessera-config')).toHaveCount(1);

    const other = await openShop({ site: env.otherSite, on: await page.context().newPage() });
    const served = other.page.waitForResponse((response) => isFieldsDocument(response.url()));
    await other.addFrame('spoofed', src);
    const response = await served;
    // The vault did serve working fields (it trusts the `origin` parameter) ...
    expect(response.status()).toBe(200);
    expect(response.headers()['content-security-policy']).toContain(`frame-ancestors ${env.merchantSite.origin}`);
    // ... and the browser refused to put them in this page.
    const frame = await other.frame('spoofed');
    await expect.poll(() => frame.url()).toMatch(/^chrome-error:/);
    await expect(other.page.locator('#spoofed').contentFrame().locator('#tessera-config')).toHaveCount(0);
  });

  test('an unknown publishable key gets an error event and no fields', async ({ openShop }) => {
    const shop = await openShop();
    await shop.mount('card', { mode: 'payment' }, {}, 'pk_test_00000000000000000000unknown');
    await expect
      .poll(() => shop.events('card', 'error'), { timeout: READY_TIMEOUT_MS })
      .toEqual([{ type: 'error', detail: expect.objectContaining({ name: 'TesseraError', code: 'unauthenticated' }) }]);
    expect(await shop.events('card', 'ready')).toEqual([]);
    await expect(shop.fields('card').locator('tessera-fields')).toHaveCount(0);
  });
});

test.describe('forged messages', () => {
  test('a forged hello, ready, change or result from another origin or another vault window changes nothing on the merchant page', async ({
    openShop,
    env,
    page,
    spy,
  }) => {
    const shop = await openShop();
    await shop.mountReady('card', { mode: 'payment' });
    const channel = await shop.channelOf('card');
    const before = await shop.events('card');

    // A frame of another site, and a document of the vault's own origin that is not the card's frame.
    await shop.addFrame('forger', `${env.pageUrl(env.otherSite, 'blank.html')}`);
    await shop.addFrame('vault-window', `${env.vault.url}/v1/sri.json`);
    await expect(page.locator('#forger').contentFrame().locator('h1')).toHaveText('Another site');
    const forgerFrame = await shop.frame('forger');
    const vaultFrame = await shop.frame('vault-window');
    await expect.poll(() => vaultFrame.evaluate('document.readyState')).toBe('complete');

    const merchantOrigin = env.merchantSite.origin;
    const forgeries: unknown[] = [
      { v: 1, type: 'tessera:hello', channel },
      { type: 'ready' },
      { type: 'change', complete: true, empty: false, brand: 'jcb', error: null },
      { type: 'result', id: 0, ok: true, value: { token: 'tok_forged', reusable: true, card: { brand: 'visa', last4: '0000', exp_month: 1, exp_year: 2040 } } },
      { type: 'result', id: 1, ok: true, value: { token: 'tok_forged', reusable: true, card: { brand: 'visa', last4: '0000', exp_month: 1, exp_year: 2040 } } },
    ];
    await shop.typeCard('card', CARDS.visa);
    const tokenizing = shop.tokenize('card');
    for (const message of forgeries) {
      await forgerFrame.evaluate(([m, o]) => (globalThis as unknown as ForgerWindow).forger.postToParent(m, o), [message, merchantOrigin] as const);
    }
    await vaultFrame.evaluate(([m, o]) => (globalThis as unknown as { parent: { postMessage(m: unknown, o: string): void } }).parent.postMessage(m, o), [
      { v: 1, type: 'tessera:hello', channel },
      merchantOrigin,
    ] as const);

    // They did arrive on the merchant page ...
    const delivered = () => spy.filter((entry) => entry.kind === 'received' && !isFieldsDocument(entry.at) && entry.via === 'window');
    await expect.poll(() => delivered().filter((entry) => entry.origin === env.otherSite.origin).length).toBe(forgeries.length);
    // From the vault's origin: the card's own hello at mount, and the forged one.
    await expect.poll(() => delivered().filter((entry) => entry.origin === env.vault.url && entry.data.includes('tessera:hello')).length).toBe(2);

    // ... and changed nothing: the real token, no new handshake, no event the fields did not send.
    const outcome = await tokenizing;
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.value.token).not.toBe('tok_forged');
    expect(await readToken(env, outcome.value.token)).toMatchObject({ card: { last4: '4242' } });
    expect(messagesOfType(spy, 'post', 'tessera:init')).toHaveLength(1);
    const after = (await shop.events('card')).slice(before.length);
    expect(after.filter((event) => ['ready', 'submit', 'error'].includes(event.type))).toEqual([]);
    // Every change the page's handler saw is one the fields sent on the port, and no other.
    const sentByFields = () =>
      spy
        .filter((entry) => entry.kind === 'post' && entry.via === 'port' && isFieldsDocument(entry.at))
        .map((entry) => JSON.parse(entry.data))
        .filter((message) => message.type === 'change')
        .map(({ type, ...state }) => state);
    await expect.poll(async () => (await shop.events('card', 'change')).map((event) => event.detail)).toEqual(sentByFields());
    // Still the same working card: a second tokenization goes through the same port.
    expect(await shop.tokenize('card')).toMatchObject({ ok: true });
  });

  test('the fields ignore a well-formed tessera:init from any window but their parent, and answer their parent', async ({ openShop, env, page, spy }) => {
    const shop = await openShop();
    const channel = 'manual-channel-1';
    const src = `${env.vault.url}/v1/fields?key=${env.merchant.publishableKey}&origin=${encodeURIComponent(env.merchantSite.origin)}#${channel}`;
    await shop.addFrame('fields', src);
    await expect.poll(() => messagesOfType(spy, 'received', 'tessera:hello').length, { timeout: READY_TIMEOUT_MS }).toBe(1);

    // Another site's frame and a frame of the merchant's own origin (same origin as the parent, but not the parent).
    await shop.addFrame('other-site', env.pageUrl(env.otherSite, 'blank.html'));
    await shop.addFrame('same-site', env.pageUrl(env.merchantSite, 'blank.html'));
    const forgers = await Promise.all(
      ['other-site', 'same-site'].map(async (selector) => {
        await expect(page.locator(`#${selector}`).contentFrame().locator('h1')).toHaveText('Another site');
        return shop.frame(selector);
      }),
    );
    // The fields' index among the page's frames: the hidden warm frame checkout.js made as it ran comes first.
    const fieldsIndex = await page.evaluate(() => {
      const window = globalThis as any;
      // `.window` is the window itself, past the spy's stand-in for `contentWindow`.
      const fieldsWindow = window.document.getElementById('fields').contentWindow.window;
      return Array.from({ length: window.frames.length }, (_, i) => window.frames[i].window).indexOf(fieldsWindow);
    });
    expect(fieldsIndex).toBeGreaterThanOrEqual(0);
    for (const forger of forgers) {
      await forger.evaluate(([i, v, c]) => (globalThis as unknown as ForgerWindow).forger.postInitToSibling(i, v, c), [fieldsIndex, env.vault.url, channel] as const);
    }

    const initsReceivedByFields = () => messagesOfType(spy, 'received', 'tessera:init').filter((entry) => isFieldsDocument(entry.at));
    await expect.poll(() => initsReceivedByFields().map((entry) => entry.origin).sort()).toEqual([env.merchantSite.origin, env.otherSite.origin].sort());
    const fields = page.locator('#fields').contentFrame();
    await expect(fields.locator('tessera-fields')).toHaveCount(0);

    // The real parent's init, on the same channel, is taken.
    await shop.initFrame('fields', { mode: 'payment' });
    await expect.poll(() => shop.receivedOnPort('fields')).toContainEqual({ type: 'ready' });
    await expect(fields.locator('#number')).toBeVisible();
    for (const forger of forgers) {
      expect(await forger.evaluate(() => (globalThis as unknown as ForgerWindow).forger.received())).toEqual([]);
    }
  });
});

test.describe('the postMessage spy and the message audit', () => {
  test('every postMessage of the handshake names the exact origin it is for', async ({ openShop, env, spy }) => {
    const shop = await openShop();
    await shop.mountReady('card', { mode: 'payment' });
    await shop.typeCard('card', CARDS.visa);
    expect(await shop.tokenize('card')).toMatchObject({ ok: true });

    const windowPosts = spy.filter((entry) => entry.kind === 'post' && entry.via === 'window');
    const hello = windowPosts.filter((entry) => entry.data.includes('"tessera:hello"'));
    const init = windowPosts.filter((entry) => entry.data.includes('"tessera:init"'));
    // The fields' hello goes to the merchant's origin only; the loader's init to the vault's only.
    expect(hello.map((entry) => [isFieldsDocument(entry.at), entry.targetOrigin])).toEqual([[true, env.merchantSite.origin]]);
    expect(init.map((entry) => [isFieldsDocument(entry.at), entry.targetOrigin])).toEqual([[false, env.vault.url]]);
    // After the handshake, the traffic moves to the port, both ways.
    const portPosts = spy.filter((entry) => entry.kind === 'post' && entry.via === 'port');
    expect(portPosts.some((entry) => isFieldsDocument(entry.at) && entry.data.includes('"type":"result"'))).toBe(true);
    expect(portPosts.some((entry) => !isFieldsDocument(entry.at) && entry.data.includes('"type":"tokenize"'))).toBe(true);
    // And what the merchant page receives on its port is recorded for the audit.
    const receivedByPage = spy.filter((entry) => entry.kind === 'received' && entry.via === 'port' && !isFieldsDocument(entry.at));
    expect(receivedByPage.map((entry) => JSON.parse(entry.data).type)).toEqual(expect.arrayContaining(['ready', 'change', 'result']));
    expect(windowPosts.filter((entry) => entry.targetOrigin === '*')).toEqual([]);
  });

  test('the message audit flags a card number, spaced or not, a BIN, a CVC and a post to "*", and not a CVC-like run inside base64url or a BIN-like one inside an id', () => {
    const at = 'http://localhost:1/shop.html';
    const received = (data: unknown): SpyEntry => ({ kind: 'received', via: 'port', data: JSON.stringify(data), at });
    expect(
      auditMessages([
        received({ type: 'change', number: CARDS.visa.number }),
        received({ text: `typed ${CARDS.mastercard.spaced}` }),
        received({ bin: '378282' }),
        received({ cvc: CARDS.visa.cvc }),
        { kind: 'post', via: 'window', targetOrigin: '*', data: '{}', at },
      ]),
    ).toEqual([
      `card number 4242… in a port message received by ${at}`,
      `card number 5555… in a port message received by ${at}`,
      `BIN 378282 in a port message received by ${at}`,
      `CVC ${CARDS.visa.cvc} in a port message received by ${at}`,
      `postMessage to '*' from ${at} (unknown caller)`,
    ]);
    expect(
      auditMessages([
        received({ type: 'resize', height: Number(CARDS.visa.cvc) }),
        received({ cvc: `eyJhbGciOi.x-${CARDS.visa.cvc}_y.abc` }),
        // A BIN's digits inside a random hex id, as a webhook delivery's can hold.
        received({ id: `whd_0f${CARDS.mastercard.number.slice(0, 6)}a91c04e2d7b3a6c5e8f1d2b4a9c` }),
        received({ type: 'result', value: { card: { last4: CARDS.visa.last4 } } }),
        // What the fields themselves receive is theirs to see.
        { ...received({ number: CARDS.visa.number }), at: 'http://127.0.0.1:2/v1/fields?key=pk#c' },
      ]),
    ).toEqual([]);
  });
});
