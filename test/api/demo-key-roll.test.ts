/**
 * The merchant rolls the demo shop's secret key from the dashboard: the shop
 * switches to the new key at once, keeps it in its own data folder for its
 * next start, and never shows it to a page, stores it in its database or
 * logs it. A roll whose answer was lost is asked for again with the same
 * Idempotency-Key. Against a real vault, without a browser (the journey is
 * in test/e2e/demo-dashboard.spec.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoMerchantPath, loadDemoMerchant, type DemoMerchant } from '../../demo/server/config.ts';
import { newShopId } from '../../demo/server/context.ts';
import { openShopDb } from '../../demo/server/db.ts';
import { rolledSecretKeyPath } from '../../demo/server/secret-key.ts';
import { VaultClient, VaultRequestError, type VaultMerchant } from '../../demo/server/vault-client.ts';
import { DEMO_MERCHANT_ORIGIN } from '../../server/merchants/demo.ts';
import { api, createMerchant } from '../support/api.ts';
import { dumpTables } from '../support/leaks.ts';
import { DASHBOARD_PASSWORD, fieldsToken, Shopper, startTestShop, type TestShop } from '../support/shop.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

/** A whole secret key. The dashboard's audit events name their key as `sk_test_…` and its last 4, which is not one. */
const SECRET_KEY = /sk_test_[0-9A-Za-z]{20,}/;

describe('rolling the demo shop’s secret key', () => {
  let vault: TestVault;
  const shops: TestShop[] = [];

  beforeAll(async () => {
    vault = await startTestVault({ name: 'demo-key-roll' });
  });
  afterAll(async () => {
    for (const shop of shops) await shop.close();
    await vault?.close();
  });

  /** A merchant of the test's own that allows the demo shop's origin, as the vault's demo merchant does. */
  async function newMerchant(): Promise<DemoMerchant> {
    const created = await createMerchant(vault, { name: 'Demo Shop (key roll)', allowedOrigins: [DEMO_MERCHANT_ORIGIN] });
    return { merchantId: created.id, publishableKey: created.publishableKey, secretKey: created.secretKey };
  }

  async function startShop(merchant: DemoMerchant, dataDir?: string): Promise<TestShop> {
    const shop = await startTestShop({ merchant, vaultUrl: vault.url, name: 'demo-key-roll-shop', ...(dataDir === undefined ? {} : { dataDir }) });
    shops.push(shop);
    return shop;
  }

  const keyStatus = async (key: string) => (await api(vault.url, 'GET', '/v1/merchant', { key })).status;
  const savedKey = (shop: TestShop) => readFileSync(rolledSecretKeyPath(shop.dataDir), 'utf8').trim();

  async function owner(shop: TestShop): Promise<Shopper> {
    const dashboard = new Shopper(() => shop);
    expect((await dashboard.call('POST', '/api/dashboard/login', { json: { password: DASHBOARD_PASSWORD } })).status).toBe(200);
    return dashboard;
  }

  /** A guest buys the tile nippers; answers the order. */
  async function buy(shop: TestShop, merchant: DemoMerchant): Promise<{ id: string; status: string }> {
    const shopper = new Shopper(() => shop);
    expect((await shopper.call('POST', '/api/cart', { json: { product_id: 'nippers', quantity: 1 } })).status).toBe(200);
    const paid = await shopper.call('POST', '/api/checkout', { json: { token: await fieldsToken(vault.url, merchant) } });
    expect(paid.status, paid.text).toBe(201);
    return paid.body.order;
  }

  /** A roll the shop asked for, written down before the vault was asked, whose answer never reached it (the shop died). */
  async function lostRoll(shop: TestShop, merchant: DemoMerchant, expiresIn: number): Promise<{ id: string; answer: { secret_key: string; previous_keys_expire_at: string } }> {
    await shop.close();
    const id = newShopId('roll');
    const db = await openShopDb(shop.dataDir);
    await db.query('insert into key_rolls (id, expires_in) values ($1, $2)', [id, expiresIn]);
    await db.close();
    const rolled = await api(vault.url, 'POST', '/v1/merchant/keys/roll', {
      key: merchant.secretKey,
      json: { expires_in: expiresIn },
      headers: { 'Idempotency-Key': `key-roll-${id}` },
    });
    expect(rolled.status).toBe(201);
    return { id, answer: rolled.body };
  }

  it('rolls with “now”: the vault refuses the old key at once, and the shop takes payments and lists its orders with the new one', async () => {
    // The vault's own demo merchant, whose keys the shop reads from demo-merchant.json, as under `npm start`.
    const merchant = loadDemoMerchant(vault.dataDir);
    const shop = await startShop(merchant);
    const dashboard = await owner(shop);
    expect((await dashboard.call('GET', '/api/dashboard')).body.keyRoll).toBeNull();
    const before = await buy(shop, merchant);

    const rolled = await dashboard.call('POST', '/api/dashboard/keys/roll', { json: { expiresIn: 0 } });
    expect(rolled.status, rolled.text).toBe(201);
    expect(rolled.body.keyRoll).toMatchObject({ status: 'done' });
    expect(Math.abs(Date.parse(rolled.body.keyRoll.previousKeysExpireAt) - Date.now())).toBeLessThan(10_000);
    expect(rolled.text).not.toMatch(/sk_test_/);

    expect(await keyStatus(merchant.secretKey)).toBe(401);
    const newKey = savedKey(shop);
    expect(newKey).toMatch(/^sk_test_[0-9A-Za-z]{20,}$/);
    expect(newKey).not.toBe(merchant.secretKey);
    expect(await keyStatus(newKey)).toBe(200);
    expect(statSync(rolledSecretKeyPath(shop.dataDir)).mode & 0o777).toBe(0o600);
    // The vault's file is the vault's: the shop leaves it as it was.
    expect(JSON.parse(readFileSync(demoMerchantPath(vault.dataDir), 'utf8')).secret_key).toBe(merchant.secretKey);

    const after = await buy(shop, merchant);
    expect(after.status).toBe('captured');
    const payments = await api(vault.url, 'GET', `/v1/payments?reference=${after.id}`, { key: newKey });
    expect(payments.body.data).toMatchObject([{ status: 'captured', amount: 1850 }]);

    const listed = await dashboard.call('GET', '/api/dashboard');
    expect(listed.status).toBe(200);
    expect(listed.body.orders.map((order: { id: string }) => order.id)).toEqual([after.id, before.id]);
    expect(listed.body.keyRoll).toEqual(rolled.body.keyRoll);
    const events: { action: string; actor: string }[] = listed.body.events;
    expect(events.map((event) => event.action)).toContain('merchant.secret_key_rolled');
    // The audit log names a key by its last 4: the roll was made with the old key, the payment after it with the new one.
    expect(events.find((event) => event.action === 'merchant.secret_key_rolled')!.actor).toBe(`sk_test_…${merchant.secretKey.slice(-4)}`);
    expect(events.find((event) => event.action === 'payment.captured')!.actor).toBe(`sk_test_…${newKey.slice(-4)}`);
    expect(listed.text).not.toMatch(SECRET_KEY);

    // The key is in the file only: not in the shop's database, not in its log.
    const dumps = await dumpTables(async (sql) => (await shop.db.query<Record<string, unknown>>(sql)).rows);
    expect(dumps.map((dump) => dump.table)).toContain('key_rolls');
    const values = dumps.flatMap((dump) => dump.values.map((value) => (typeof value === 'string' ? value : Buffer.from(value).toString('latin1'))));
    expect(values.filter((value) => SECRET_KEY.test(value))).toEqual([]);
    const log = readFileSync(shop.logFile, 'utf8');
    expect(log).toContain('secret key rolled; the shop uses the new key');
    expect(log).not.toContain('sk_test_');
  });

  it('calls the vault after a restart with the key it saved, not the one in demo-merchant.json', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    expect((await (await owner(shop)).call('POST', '/api/dashboard/keys/roll', { json: { expiresIn: 0 } })).status).toBe(201);
    const before = await buy(shop, merchant);
    await shop.close();

    // Started as `npm start` would: with the first key, which the vault now refuses.
    expect(await keyStatus(merchant.secretKey)).toBe(401);
    const restarted = await startShop(merchant, shop.dataDir);
    const after = await buy(restarted, merchant);
    expect(after.status).toBe('captured');
    const listed = await (await owner(restarted)).call('GET', '/api/dashboard');
    expect(listed.status).toBe(200);
    expect(listed.body.orders.map((order: { id: string }) => order.id)).toEqual([after.id, before.id]);
    expect(listed.body.keyRoll.status).toBe('done');
    expect(readFileSync(restarted.logFile, 'utf8')).not.toContain('sk_test_');
  });

  it('asks again at start, with the same Idempotency-Key, for a roll whose answer was lost, and keeps the key the vault made then', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const { id, answer } = await lostRoll(shop, merchant, 3600);

    const restarted = await startShop(merchant, shop.dataDir);
    expect(savedKey(restarted)).toBe(answer.secret_key);
    const { rows } = await restarted.db.query<{ status: string; previous_keys_expire_at: Date }>('select status, previous_keys_expire_at from key_rolls where id = $1', [id]);
    expect(rows.map((row) => [row.status, row.previous_keys_expire_at.toISOString()])).toEqual([['done', answer.previous_keys_expire_at]]);
    expect(readFileSync(restarted.logFile, 'utf8')).toMatch(/"asked_again":true.*secret key rolled/);
    expect(await keyStatus(merchant.secretKey)).toBe(200);
    expect((await buy(restarted, merchant)).status).toBe('captured');
    // Only the one roll happened at the vault.
    const events = await api(vault.url, 'GET', '/v1/events?limit=100', { key: answer.secret_key });
    expect(events.body.data.filter((event: { action: string }) => event.action === 'merchant.secret_key_rolled')).toHaveLength(1);
  });

  it('marks failed, and logs that the new key may be lost, a roll asked for again after the old key stopped working', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    const { id } = await lostRoll(shop, merchant, 0);

    const restarted = await startShop(merchant, shop.dataDir);
    const { rows } = await restarted.db.query<{ status: string }>('select status from key_rolls where id = $1', [id]);
    expect(rows).toEqual([{ status: 'failed' }]);
    const log = readFileSync(restarted.logFile, 'utf8');
    expect(log).toContain('the new key is lost and the merchant needs a new key from the vault operator');
    expect(log).not.toContain('sk_test_');
    const listed = await (await owner(restarted)).call('GET', '/api/dashboard');
    expect(listed.status).toBe(502);
  });

  it('sends a call the vault refused while a roll was under way once more, with the new key', async () => {
    const merchant = await newMerchant();
    const client = new VaultClient({ vaultUrl: vault.url, secretKey: merchant.secretKey });
    const refusals = () => readFileSync(vault.logFile, 'utf8').split('\n').filter((line) => line.includes('"path":"/v1/merchant"') && line.includes('"status":401')).length;
    const refusedBefore = refusals();
    let during: Promise<VaultMerchant> | undefined;
    await client.rolling(async () => {
      const rolled = await client.rollSecretKey(0, `race-${newShopId('roll')}`);
      // Sent with the key the roll has just ended.
      during = client.merchant();
      while (refusals() === refusedBefore) await new Promise((resolve) => setTimeout(resolve, 20));
      client.useSecretKey(rolled.secret_key);
    });
    expect((await during!).id).toBe(merchant.merchantId);

    // Outside a roll, a refused key is refused.
    const stale = new VaultClient({ vaultUrl: vault.url, secretKey: merchant.secretKey });
    await expect(stale.merchant()).rejects.toMatchObject({ status: 401 });
    await expect(stale.merchant()).rejects.toBeInstanceOf(VaultRequestError);
  });

  it('rolls only for a signed-in dashboard, and only with a whole number of seconds up to a week', async () => {
    const merchant = await newMerchant();
    const shop = await startShop(merchant);
    expect((await new Shopper(() => shop).call('POST', '/api/dashboard/keys/roll', { json: { expiresIn: 0 } })).status).toBe(401);
    const dashboard = await owner(shop);
    for (const body of [{}, { expiresIn: -1 }, { expiresIn: 604_801 }, { expiresIn: 1.5 }, { expiresIn: '0' }, { expiresIn: 0, secretKey: 'sk_test_x' }]) {
      const refused = await dashboard.call('POST', '/api/dashboard/keys/roll', { json: body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
    }
    expect(await keyStatus(merchant.secretKey)).toBe(200);
    expect((await shop.db.query('select 1 from key_rolls')).rows).toEqual([]);
  });
});
