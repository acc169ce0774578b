/**
 * The demo shop's defences against card testing and password guessing,
 * against a real vault: card attempts limited per order, session and client
 * within a window, one generic sentence from the second decline on, 429 with
 * Retry-After past a limit (the shop's own, or the vault's), and sign-in
 * lockout with exponential backoff. Each test starts its own shop, so its
 * counters start at zero; all of them see the requests from 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DemoMerchant, ShopLimits } from '../../demo/server/config.ts';
import { loadDemoMerchant } from '../../demo/server/config.ts';
import { api, type ApiResponse } from '../support/api.ts';
import { SANDBOX_CARDS } from '../support/cards.ts';
import { DASHBOARD_PASSWORD, fieldsToken, Shopper, startTestShop, type TestShop } from '../support/shop.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

const GENERIC = 'Your card was declined. Try another card.';
const INSUFFICIENT_FUNDS = 'Your card was declined for insufficient funds. Try another card.';
const TOO_MANY_CARD_ATTEMPTS = /^Too many card attempts\. For your security, please wait \d+ (second|minute|hour)s? before trying again\.$/;
const TOO_MANY_SIGN_INS = /^Too many sign-in attempts\. For your security, please wait \d+ (second|minute|hour)s? before trying again\.$/;

/** Another client: requests from this loopback address reach the shop with another IP. */
const OTHER_CLIENT = '127.0.0.2';

let vault: TestVault;
let merchant: DemoMerchant;
const shops: TestShop[] = [];

beforeAll(async () => {
  vault = await startTestVault({ name: 'demo-limits' });
  merchant = loadDemoMerchant(vault.dataDir);
});
afterEach(async () => {
  for (const shop of shops.splice(0)) await shop.close();
});
afterAll(async () => {
  await vault?.close();
});

async function newShop(limits: Partial<ShopLimits> = {}, options: { vaultUrl?: string; dataDir?: string } = {}): Promise<TestShop> {
  const shop = await startTestShop({ merchant, vaultUrl: options.vaultUrl ?? vault.url, name: 'demo-limits-shop', limits, ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
  shops.push(shop);
  return shop;
}

async function shopperWithCart(shop: () => TestShop, fromAddress?: string): Promise<Shopper> {
  const shopper = new Shopper(shop, fromAddress);
  const added = await shopper.call('POST', '/api/cart', { json: { product_id: 'nippers', quantity: 1 } });
  expect(added.status, added.text).toBe(200);
  return shopper;
}

const pay = async (shopper: Shopper, number?: string) =>
  shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken(vault.url, merchant, number === undefined ? {} : { number }) } });

const vaultRequests = () => readFileSync(vault.logFile, 'utf8').split('\n').filter((line) => line.includes('"msg":"request"')).length;

const paymentsFor = async (reference: string) => (await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, { key: merchant.secretKey })).body.data;

async function unpaidOrderId(shop: TestShop): Promise<string> {
  const { rows } = await shop.db.query<{ id: string }>(`select id from orders where status = 'awaiting_payment' and attempts > 0`);
  expect(rows).toHaveLength(1);
  return rows[0]!.id;
}

/** A 429 from the shop: its own code and sentence, and a Retry-After in whole seconds within `maxSeconds`. */
function expectTooManyCardAttempts(response: ApiResponse, maxSeconds: number): number {
  expect(response.status, response.text).toBe(429);
  expect(response.body.error.code).toBe('too_many_attempts');
  expect(response.body.error.message).toMatch(TOO_MANY_CARD_ATTEMPTS);
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
  return retryAfter;
}

describe('card attempts', () => {
  it('refuses a fourth attempt on one order with 429 too_many_attempts and Retry-After, without calling the vault, and keeps the cart', async () => {
    const shop = await newShop();
    const shopper = await shopperWithCart(() => shop);
    for (const number of [SANDBOX_CARDS.insufficient_funds, SANDBOX_CARDS.expired_card, SANDBOX_CARDS.generic_decline]) {
      expect((await pay(shopper, number)).status).toBe(402);
    }
    const orderId = await unpaidOrderId(shop);
    const token = await fieldsToken(vault.url, merchant);
    const before = vaultRequests();
    const refused = await shopper.call('POST', '/api/checkout', { json: { token } });
    expectTooManyCardAttempts(refused, 3600);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3500);
    expect(vaultRequests()).toBe(before);
    expect(await paymentsFor(orderId)).toHaveLength(3);
    expect((await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: merchant.secretKey })).body.used_at).toBeNull();
    expect((await shopper.call('GET', '/api/cart')).body.count).toBe(1);
    expect((await shop.db.query('select status from orders where id = $1', [orderId])).rows).toEqual([{ status: 'awaiting_payment' }]);
  });

  it.each([
    { name: 'insufficient funds, then expired card, incorrect CVC, insufficient funds', numbers: ['insufficient_funds', 'expired_card', 'incorrect_cvc', 'insufficient_funds'] as const },
    { name: 'incorrect CVC, then insufficient funds, expired card, a generic decline', numbers: ['incorrect_cvc', 'insufficient_funds', 'expired_card', 'generic_decline'] as const },
  ])('gives the acquirer’s reason for the first decline of an order only, and one generic sentence from the second on ($name)', async ({ numbers }) => {
    const shop = await newShop({ cardAttemptsPerOrder: 10, cardAttemptsPerSession: 10 });
    const shopper = await shopperWithCart(() => shop);
    const messages: string[] = [];
    for (const reason of numbers) {
      const response = await pay(shopper, SANDBOX_CARDS[reason]);
      expect(response.status).toBe(402);
      expect(response.body.error.code).toBe('card_declined');
      messages.push(response.body.error.message);
    }
    expect(messages[0]).not.toBe(GENERIC);
    expect(messages.slice(1)).toEqual([GENERIC, GENERIC, GENERIC]);
    // The merchant still knows why: the acquirer's codes are in the shop's own records.
    const { rows } = await shop.db.query<{ decline_code: string }>('select decline_code from payment_attempts order by attempt');
    expect(rows.map((row) => row.decline_code)).toEqual([...numbers]);
  });

  it('counts the declines of a session across its orders: the next order’s first decline is already generic', async () => {
    const shop = await newShop();
    const shopper = await shopperWithCart(() => shop);
    expect((await pay(shopper, SANDBOX_CARDS.insufficient_funds)).body.error.message).toBe(INSUFFICIENT_FUNDS);
    expect((await pay(shopper)).status).toBe(201);
    await shopper.call('POST', '/api/cart', { json: { product_id: 'mesh', quantity: 1 } });
    const declined = await pay(shopper, SANDBOX_CARDS.insufficient_funds);
    expect(declined.status).toBe(402);
    expect(declined.body.error.message).toBe(GENERIC);
  });

  it('counts the attempts of a session across its orders, and refuses the sixth', async () => {
    const shop = await newShop();
    const shopper = await shopperWithCart(() => shop);
    expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    expect((await pay(shopper)).status).toBe(201);
    await shopper.call('POST', '/api/cart', { json: { product_id: 'mesh', quantity: 1 } });
    expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    // The second order has had two attempts only; the session has had five.
    const before = vaultRequests();
    expectTooManyCardAttempts(await shopper.call('POST', '/api/checkout', { json: { token: 'tok_0000000000000000000000' } }), 3600);
    expect(vaultRequests()).toBe(before);
  });

  it('keeps counting a guest’s attempts in the session that signing up starts', async () => {
    const shop = await newShop({ cardAttemptsPerOrder: 10, cardAttemptsPerSession: 3 });
    const shopper = await shopperWithCart(() => shop);
    for (let i = 0; i < 3; i++) expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    const guestCookie = shopper.cookie;
    expect((await shopper.call('POST', '/api/signup', { json: { email: 'carry@example.test', password: 'a long password' } })).status).toBe(201);
    expect(shopper.cookie).not.toBe(guestCookie);
    expectTooManyCardAttempts(await pay(shopper), 3600);
  });

  it('counts the attempts of a client across sessions, and another client is not affected', async () => {
    const shop = await newShop({ cardAttemptsPerClient: 3 });
    for (const number of [SANDBOX_CARDS.generic_decline, undefined, SANDBOX_CARDS.expired_card]) {
      const response = await pay(await shopperWithCart(() => shop), number);
      expect(response.status).toBe(number === undefined ? 201 : 402);
    }
    const before = vaultRequests();
    expectTooManyCardAttempts(await shopperWithCart(() => shop).then((fresh) => fresh.call('POST', '/api/checkout', { json: { token: 'tok_0000000000000000000000' } })), 3600);
    expect(vaultRequests()).toBe(before);

    const elsewhere = await pay(await shopperWithCart(() => shop, OTHER_CLIENT));
    expect(elsewhere.status, elsewhere.text).toBe(201);
  });

  it('lets no more than the client’s allowance through when its carts pay at the same moment', async () => {
    const shop = await newShop({ cardAttemptsPerClient: 3 });
    const carts = await Promise.all(Array.from({ length: 8 }, () => shopperWithCart(() => shop)));
    const tokens = await Promise.all(carts.map(() => fieldsToken(vault.url, merchant, { number: SANDBOX_CARDS.generic_decline })));
    const answers = await Promise.all(carts.map((cart, i) => cart.call('POST', '/api/checkout', { json: { token: tokens[i] } })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([402, 402, 402, 429, 429, 429, 429, 429]);
  });

  it('takes the order’s payment again once its oldest attempt has left the window, on the same order', async () => {
    const shop = await newShop({ cardAttemptWindowMs: 2_000 });
    const shopper = await shopperWithCart(() => shop);
    for (let i = 0; i < 3; i++) expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    const orderId = await unpaidOrderId(shop);
    // A refused checkout never reaches the vault, so the same unspent token serves every try.
    const token = await fieldsToken(vault.url, merchant);
    expectTooManyCardAttempts(await shopper.call('POST', '/api/checkout', { json: { token } }), 2);
    let paid: ApiResponse | undefined;
    await expect
      .poll(async () => (paid = await shopper.call('POST', '/api/checkout', { json: { token } })).status, { timeout: 10_000, interval: 200 })
      .toBe(201);
    expect(paid!.body.order.id).toBe(orderId);
  });

  it('keeps its counts when the shop restarts', async () => {
    const first = await newShop();
    let shop = first;
    const shopper = await shopperWithCart(() => shop);
    for (let i = 0; i < 3; i++) expect((await pay(shopper, SANDBOX_CARDS.generic_decline)).status).toBe(402);
    await first.close();
    shop = await newShop({}, { dataDir: first.dataDir });
    expectTooManyCardAttempts(await pay(shopper), 3600);
  });

  it('counts verifications of cards saved without a purchase as card attempts, with the reason only the first time', async () => {
    const shop = await newShop({ cardAttemptsPerSession: 2 });
    const shopper = new Shopper(() => shop);
    const { body } = await shopper.call('POST', '/api/signup', { json: { email: 'verify@example.test', password: 'a long password' } });
    const customer: string = body.user.id;
    const save = async (number?: string) =>
      shopper.call('POST', '/api/cards', { json: { token: await fieldsToken(vault.url, merchant, { reusable: true, customer, ...(number ? { number } : {}) }) } });

    const first = await save(SANDBOX_CARDS.insufficient_funds);
    expect(first.status).toBe(402);
    expect(first.body.error.message).toBe(INSUFFICIENT_FUNDS);
    const second = await save(SANDBOX_CARDS.incorrect_cvc);
    expect(second.status).toBe(402);
    expect(second.body.error.message).toBe(GENERIC);
    const before = vaultRequests();
    expectTooManyCardAttempts(await shopper.call('POST', '/api/cards', { json: { token: 'tok_0000000000000000000000' } }), 3600);
    expect(vaultRequests()).toBe(before);
  });

  it('answers the vault’s own 429 with the shop’s too-many-attempts answer and the vault’s Retry-After, and the order stays payable', async () => {
    // A vault of its own that refuses a card after one decline within two minutes.
    const strict = await startTestVault({ name: 'demo-limits-strict-vault', env: { TESSERA_DECLINES_PER_CARD: '1', TESSERA_DECLINE_WINDOW_SECONDS: '120' } });
    try {
      const strictMerchant = loadDemoMerchant(strict.dataDir);
      const shop = await startTestShop({ merchant: strictMerchant, vaultUrl: strict.url, name: 'demo-limits-shop' });
      shops.push(shop);
      const shopper = await shopperWithCart(() => shop);
      const payWith = async (number: string) =>
        shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken(strict.url, strictMerchant, { number }) } });
      expect((await payWith(SANDBOX_CARDS.generic_decline)).status).toBe(402);
      const acquirerCalls = async () =>
        (await strict.vault.db.query<{ n: number }>('select count(*)::int as n from sandbox_acquirer_authorizations')).rows[0]!.n;
      const before = await acquirerCalls();
      // Three times: answers the vault refused before its acquirer are not the shopper's attempts.
      for (let i = 0; i < 3; i++) {
        const refused = await payWith(SANDBOX_CARDS.generic_decline);
        expectTooManyCardAttempts(refused, 120);
        expect(refused.body.error.message).toMatch(TOO_MANY_CARD_ATTEMPTS);
        expect(refused.text).not.toMatch(/rate_limited|declined attempts|try again later/);
      }
      expect(await acquirerCalls()).toBe(before);
      const orderId = await unpaidOrderId(shop);

      // Another card is not limited, and the same order is paid with it.
      const paid = await payWith('4242424242424242');
      expect(paid.status, paid.text).toBe(201);
      expect(paid.body.order.id).toBe(orderId);
    } finally {
      await strict.close();
    }
  });
});

describe('sign-in lockout', () => {
  /** Three failures allowed, then locks of 1 s, 2 s, 4 s… */
  const LOCKOUT: Partial<ShopLimits> = { loginFailuresPerEmail: 3, loginLockoutBaseMs: 1_000, loginLockoutMaxMs: 60_000 };
  const PASSWORD = 'the right password';

  async function account(shop: TestShop, email: string): Promise<void> {
    expect((await new Shopper(() => shop).call('POST', '/api/signup', { json: { email, password: PASSWORD } })).status).toBe(201);
  }

  const signIn = (shopper: Shopper, email: string, password: string) => shopper.call('POST', '/api/login', { json: { email, password } });

  function expectLocked(response: ApiResponse): number {
    expect(response.status, response.text).toBe(429);
    expect(response.body.error.code).toBe('too_many_sign_in_attempts');
    expect(response.body.error.message).toMatch(TOO_MANY_SIGN_INS);
    return Number(response.headers.get('retry-after'));
  }

  it('locks an address after repeated failures, refuses even the right password while locked, and lets it in once the lock lifts', async () => {
    const shop = await newShop(LOCKOUT);
    await account(shop, 'locked@example.test');
    const shopper = new Shopper(() => shop);
    for (let i = 0; i < 3; i++) expect((await signIn(shopper, 'locked@example.test', 'a wrong password')).status).toBe(401);
    expect(expectLocked(await signIn(shopper, 'locked@example.test', PASSWORD))).toBe(1);
    expect((await shopper.call('GET', '/api/me')).body.user).toBeNull();

    await expect.poll(async () => (await signIn(shopper, 'locked@example.test', PASSWORD)).status, { timeout: 10_000, interval: 100 }).toBe(200);
    expect((await shopper.call('GET', '/api/me')).body.user.email).toBe('locked@example.test');
  });

  it('doubles the lock with each failure past the allowance', async () => {
    const shop = await newShop(LOCKOUT);
    const shopper = new Shopper(() => shop);
    for (let i = 0; i < 3; i++) expect((await signIn(shopper, 'backoff@example.test', 'a wrong password')).status).toBe(401);
    const waits = [expectLocked(await signIn(shopper, 'backoff@example.test', 'a wrong password'))];
    for (let lock = 0; lock < 2; lock++) {
      // The first answer that is not 429 is the next failure, which locks for twice as long.
      await expect.poll(async () => (await signIn(shopper, 'backoff@example.test', 'a wrong password')).status, { timeout: 15_000, interval: 100 }).toBe(401);
      waits.push(expectLocked(await signIn(shopper, 'backoff@example.test', 'a wrong password')));
    }
    expect(waits).toEqual([1, 2, 4]);
  });

  it('counts guesses sent at the same moment one after another, so no more than the allowance is checked', async () => {
    const shop = await newShop({ ...LOCKOUT, loginLockoutBaseMs: 60_000 });
    await account(shop, 'burst@example.test');
    const answers = await Promise.all(Array.from({ length: 10 }, () => signIn(new Shopper(() => shop), 'burst@example.test', 'a wrong password')));
    expect(answers.map((answer) => answer.status).sort()).toEqual([401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
  });

  it('clears an address’s failures when it signs in', async () => {
    const shop = await newShop(LOCKOUT);
    await account(shop, 'reset@example.test');
    const shopper = new Shopper(() => shop);
    for (let i = 0; i < 2; i++) expect((await signIn(shopper, 'reset@example.test', 'a wrong password')).status).toBe(401);
    expect((await signIn(shopper, 'reset@example.test', PASSWORD)).status).toBe(200);
    // Counted from zero again: two more failures stay under the allowance of three.
    for (let i = 0; i < 2; i++) expect((await signIn(shopper, 'reset@example.test', 'a wrong password')).status).toBe(401);
    expect((await signIn(shopper, 'reset@example.test', PASSWORD)).status).toBe(200);
  });

  it('treats an address with no account exactly like one with an account, and stores neither', async () => {
    const shop = await newShop({ ...LOCKOUT, loginLockoutBaseMs: 60_000 });
    await account(shop, 'known@example.test');
    const answers = async (email: string) => {
      const shopper = new Shopper(() => shop);
      const responses: ApiResponse[] = [];
      for (let i = 0; i < 4; i++) responses.push(await signIn(shopper, email, 'a wrong password'));
      responses.push(await signIn(shopper, email, PASSWORD));
      return responses.map((response) => [response.status, response.headers.get('retry-after'), response.body]);
    };
    const known = await answers('known@example.test');
    expect(known.map(([status]) => status)).toEqual([401, 401, 401, 429, 429]);
    expect(await answers('nobody@example.test')).toEqual(known);
    const table = JSON.stringify((await shop.db.query('select * from login_failures')).rows);
    expect(table).not.toContain('known@example.test');
    expect(table).not.toContain('nobody@example.test');
  });

  it('locks a client that guesses across many addresses, and not another client', async () => {
    const shop = await newShop({ loginFailuresPerEmail: 100, loginFailuresPerClient: 4, loginLockoutBaseMs: 60_000 });
    await account(shop, 'sprayed@example.test');
    const guesser = new Shopper(() => shop);
    for (let i = 0; i < 4; i++) expect((await signIn(guesser, `guess-${i}@example.test`, 'a wrong password')).status).toBe(401);
    expect(expectLocked(await signIn(guesser, 'sprayed@example.test', PASSWORD))).toBe(60);
    expect((await signIn(new Shopper(() => shop, OTHER_CLIENT), 'sprayed@example.test', PASSWORD)).status).toBe(200);
  });

  it('keeps a lock when the shop restarts', async () => {
    const first = await newShop({ ...LOCKOUT, loginLockoutBaseMs: 60_000 });
    let shop = first;
    await account(shop, 'restart@example.test');
    const shopper = new Shopper(() => shop);
    for (let i = 0; i < 3; i++) expect((await signIn(shopper, 'restart@example.test', 'a wrong password')).status).toBe(401);
    await first.close();
    shop = await newShop(LOCKOUT, { dataDir: first.dataDir });
    expectLocked(await signIn(shopper, 'restart@example.test', PASSWORD));
  });

  it('locks the dashboard’s sign-in for the guessing client only, never for the merchant elsewhere', async () => {
    const shop = await newShop({ ...LOCKOUT, loginLockoutBaseMs: 60_000 });
    const guesser = new Shopper(() => shop);
    for (let i = 0; i < 3; i++) expect((await guesser.call('POST', '/api/dashboard/login', { json: { password: 'a guess' } })).status).toBe(401);
    expectLocked(await guesser.call('POST', '/api/dashboard/login', { json: { password: DASHBOARD_PASSWORD } }));
    const merchantElsewhere = new Shopper(() => shop, OTHER_CLIENT);
    expect((await merchantElsewhere.call('POST', '/api/dashboard/login', { json: { password: DASHBOARD_PASSWORD } })).status).toBe(200);
  });
});
