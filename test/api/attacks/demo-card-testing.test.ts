/**
 * Issue #8, item 8, replayed: "Card testing through the demo shop: one guest
 * cart tried 4 cards and got 4 distinct decline reasons." The same
 * reproduction against the shop's real backend, with the limits it ships
 * with (DEFAULT_LIMITS, per-client ones included), and a real vault.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, loadDemoMerchant, type DemoMerchant } from '../../../demo/server/config.ts';
import { api, type ApiResponse } from '../../support/api.ts';
import { SANDBOX_CARDS } from '../../support/cards.ts';
import { fieldsToken, Shopper, startTestShop, type TestShop } from '../../support/shop.ts';
import { startTestVault, type TestVault } from '../../support/vault.ts';

/** The four declining sandbox cards, the most telling reasons first. */
const DECLINING = [SANDBOX_CARDS.insufficient_funds, SANDBOX_CARDS.incorrect_cvc, SANDBOX_CARDS.expired_card, SANDBOX_CARDS.generic_decline];

describe('card testing through the demo shop', () => {
  let vault: TestVault;
  let merchant: DemoMerchant;
  let shop: TestShop | undefined;

  beforeAll(async () => {
    vault = await startTestVault({ name: 'attack-card-testing' });
    merchant = loadDemoMerchant(vault.dataDir);
  });
  afterAll(async () => {
    await shop?.close();
    await vault?.close();
  });

  const vaultRequests = () => readFileSync(vault.logFile, 'utf8').split('\n').filter((line) => line.includes('"msg":"request"')).length;

  async function guestCart(): Promise<Shopper> {
    const guest = new Shopper(() => shop!);
    expect((await guest.call('POST', '/api/cart', { json: { product_id: 'mesh', quantity: 1 } })).status).toBe(200);
    return guest;
  }

  /**
   * One card through the cart, as a card tester would: a fresh token from
   * the fields, then checkout. `vaultCalls` counts what the checkout alone
   * asked of the vault.
   */
  async function tryCard(guest: Shopper, number: string): Promise<{ token: string; answer: ApiResponse; vaultCalls: number }> {
    const token = await fieldsToken(vault.url, merchant, { number });
    const before = vaultRequests();
    const answer = await guest.call('POST', '/api/checkout', { json: { token } });
    return { token, answer, vaultCalls: vaultRequests() - before };
  }

  it('one guest cart trying four declining cards learns one decline reason, not four, and is stopped before the fourth reaches the vault', async () => {
    shop = await startTestShop({ merchant, vaultUrl: vault.url, name: 'attack-card-testing-shop', limits: DEFAULT_LIMITS });
    const guest = await guestCart();
    const tries: Awaited<ReturnType<typeof tryCard>>[] = [];
    for (const number of DECLINING) tries.push(await tryCard(guest, number));

    expect(tries.map(({ answer }) => answer.status)).toEqual([402, 402, 402, 429]);
    const reasons = tries.filter(({ answer }) => answer.status === 402).map(({ answer }) => answer.body.error.message);
    expect(reasons).toEqual(['Your card was declined for insufficient funds. Try another card.', 'Your card was declined. Try another card.', 'Your card was declined. Try another card.']);
    expect(new Set(reasons).size).toBeLessThan(4);

    const stopped = tries[3]!.answer;
    expect(stopped.body.error.code).toBe('too_many_attempts');
    expect(tries[3]!.vaultCalls).toBe(0);
    expect(Number(stopped.headers.get('retry-after'))).toBeGreaterThan(0);
    // The fourth card was never tried at the acquirer: its token is unspent and has no payment.
    const fourth = tries[3]!.token;
    expect((await api(vault.url, 'GET', `/v1/tokens/${fourth}`, { key: merchant.secretKey })).body.used_at).toBeNull();
    expect((await api(vault.url, 'GET', `/v1/payments?token=${fourth}`, { key: merchant.secretKey })).body.data).toEqual([]);
  });

  it('starting over with new guest carts from the same client gets no more than ten cards tried an hour', async () => {
    await shop?.close();
    shop = await startTestShop({ merchant, vaultUrl: vault.url, name: 'attack-card-testing-shop', limits: DEFAULT_LIMITS });
    let triedAtTheAcquirer = 0;
    let specificReasons = 0;
    // A card tester dropping the cookie after each stop: a new cart, a new session, a new order, the same client.
    for (let cart = 0; cart < 6; cart++) {
      const guest = await guestCart();
      for (const number of DECLINING) {
        const { answer } = await tryCard(guest, number);
        if (answer.status === 429) break;
        expect(answer.status).toBe(402);
        triedAtTheAcquirer++;
        if (answer.body.error.message !== 'Your card was declined. Try another card.') specificReasons++;
      }
    }
    expect(triedAtTheAcquirer).toBe(DEFAULT_LIMITS.cardAttemptsPerClient);
    // At most one reason per cart, and only until the client's allowance is spent.
    expect(specificReasons).toBeLessThanOrEqual(Math.ceil(DEFAULT_LIMITS.cardAttemptsPerClient / DEFAULT_LIMITS.cardAttemptsPerOrder));
    const { answer } = await tryCard(await guestCart(), SANDBOX_CARDS.generic_decline);
    expect(answer.status).toBe(429);
    expect(answer.body.error.code).toBe('too_many_attempts');
  });
});
