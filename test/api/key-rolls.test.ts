/**
 * Review finding 7 (PCI DSS 3.6/3.7, 8.6.3): no key could be rolled. Now a
 * merchant rolls its secret key, an operator rolls a merchant's data key
 * (cards are re-encrypted in batches and the old version destroyed) and
 * moves everything to a new master key — each restartable, nothing lost
 * when the vault is killed in the middle.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { filesUnder, withPglite, withPostgres } from '../support/leaks.ts';
import { createTokens, inParallel } from '../support/many.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('rolling a merchant secret key on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'secret-key-roll' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const works = async (key: string) => (await api(vault.url, 'GET', '/v1/merchant', { key })).status;
  const roll = (key: string, json: object = {}, headers: Record<string, string> = {}) =>
    api(vault.url, 'POST', '/v1/merchant/keys/roll', { key, json, headers });

  it('gives a new secret key once, keeps the old one working for 24 hours by default, and ends every old key at once with expires_in 0', async () => {
    const first = await roll(shop.secretKey, {}, { 'Idempotency-Key': 'roll-1' });
    expect(first.status).toBe(201);
    expect(first.body.secret_key).toMatch(/^sk_test_[0-9A-Za-z]{20,}$/);
    expect(first.body.secret_key).not.toBe(shop.secretKey);
    const expires = Date.parse(first.body.previous_keys_expire_at) - Date.now();
    expect(expires).toBeGreaterThan(23.9 * 3600_000);
    expect(expires).toBeLessThanOrEqual(24 * 3600_000);
    expect([await works(shop.secretKey), await works(first.body.secret_key)]).toEqual([200, 200]);

    // A retry with the same key gets the same answer; the stored answer holds the secret key only sealed.
    const replayed = await roll(shop.secretKey, {}, { 'Idempotency-Key': 'roll-1' });
    expect(replayed.text).toBe(first.text);
    const stored = await vault.vault.db.query<{ response_body: string }>(`select response_body from idempotency_keys where key = 'roll-1'`);
    expect(stored.rows[0]!.response_body).toMatch(/^sealed:/);
    expect(stored.rows[0]!.response_body).not.toContain(first.body.secret_key);

    const second = await roll(first.body.secret_key, { expires_in: 0 });
    expect(second.status).toBe(201);
    expect([await works(shop.secretKey), await works(first.body.secret_key), await works(second.body.secret_key)]).toEqual([401, 401, 200]);

    const events = await api(vault.url, 'GET', '/v1/events?limit=100', { key: second.body.secret_key });
    expect(events.body.data.filter((e: { action: string }) => e.action === 'merchant.secret_key_rolled')).toHaveLength(2);
    shop = { ...shop, secretKey: second.body.secret_key };
  });

  it('lets the operator issue a merchant a new secret key that ends the others at once, for a merchant that lost its only key', async () => {
    const lost = await createMerchant(vault, { name: 'Locked Out' });
    const issued = await api(vault.url, 'POST', `/v1/merchants/${lost.id}/secret-keys`, { key: vault.adminKey, json: {} });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ object: 'secret_key', merchant: lost.id, secret_key: expect.stringMatching(/^sk_test_/) });
    expect([await works(lost.secretKey), await works(issued.body.secret_key)]).toEqual([401, 200]);
    expect((await api(vault.url, 'POST', '/v1/merchants/mer_none/secret-keys', { key: vault.adminKey, json: {} })).body.error.code).toBe('merchant_not_found');
    expect((await api(vault.url, 'POST', `/v1/merchants/${lost.id}/secret-keys`, { key: issued.body.secret_key, json: {} })).status).toBe(401);
  });

  it('refuses a publishable key, and an expires_in beyond a week', async () => {
    expect((await roll(shop.publishableKey)).body.error.code).toBe('secret_key_required');
    const tooLong = await roll(shop.secretKey, { expires_in: 8 * 24 * 3600 });
    expect({ status: tooLong.status, code: tooLong.body.error.code, param: tooLong.body.error.param }).toEqual({
      status: 400,
      code: 'parameter_invalid',
      param: 'expires_in',
    });
    expect(await works(shop.secretKey)).toBe(200);
  });
});

describe.each(storageKinds())('rolling a data key and the master key, with a kill in the middle, on %s', (storage) => {
  let running: VaultProcess | undefined;
  afterEach(() => running?.kill('SIGTERM'));

  const TOKENS = 120;

  /** A vault process on a data folder (and database) that outlive it, with the given master keys. */
  async function vaultOn(where: { dataDir: string; databaseUrl: string | undefined }, masterKeys: { current: string; previous?: string }) {
    running = await startVaultProcess({
      dataDir: where.dataDir,
      env: {
        TESSERA_MASTER_KEY: masterKeys.current,
        ...(masterKeys.previous === undefined ? {} : { TESSERA_MASTER_KEY_PREVIOUS: masterKeys.previous }),
        // Housekeeping only at start: what the test asks for is what runs.
        TESSERA_MAINTENANCE_SECONDS: '3600',
        ...(where.databaseUrl === undefined ? {} : { DATABASE_URL: where.databaseUrl, TESSERA_WORKERS: '1' }),
      },
    });
    return { url: running.url, adminKey: readFileSync(join(where.dataDir, 'admin.key'), 'utf8').trim() };
  }

  /**
   * A count that grows with every commit to the vault's database while it
   * runs: on PostgreSQL the cards already under version 2, on PGlite (no
   * second connection) the time its write-ahead log was last written.
   */
  async function databaseWrites(where: { dataDir: string; databaseUrl: string | undefined }): Promise<number> {
    if (where.databaseUrl === undefined) {
      return Math.max(...filesUnder(join(where.dataDir, 'pgdata', 'pg_wal')).map((file) => statSync(file).mtimeMs));
    }
    return withPostgres(where.databaseUrl, async (query) => Number((await query('select count(*)::int as n from tokens where data_key_version = 2'))[0]!['n']));
  }

  /** Charges every token once: each card must still open. */
  async function chargeAll(url: string, merchant: TestMerchant, tokens: string[]): Promise<number[]> {
    return inParallel(tokens.length, 8, async (i) => {
      const paid = await api(url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token: tokens[i], amount: 100, currency: 'EUR', capture: false } });
      return paid.status;
    });
  }

  it('re-encrypts every card under the new data key in restartable batches, and destroys the old version', async () => {
    const where = { dataDir: await newDataDir(storage, 'data-key-roll'), databaseUrl: storage === 'postgres' ? await newTestDatabase() : undefined };
    const masterKey = randomBytes(32).toString('base64');
    let vault = await vaultOn(where, { current: masterKey });
    const shop = await createMerchant(vault);
    const tokens = (await createTokens(vault.url, shop, TOKENS)).map((t) => t.token);

    const rolled = await api(vault.url, 'POST', `/v1/merchants/${shop.id}/data-key/roll`, { key: vault.adminKey, json: {} });
    expect(rolled.body).toMatchObject({ object: 'data_key', merchant: shop.id, version: 2 });
    // One bounded slice of the work: some cards moved, most not yet.
    const slice = await api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: { batch_size: 10, max_seconds: 0 } });
    expect(slice.body).toMatchObject({ reencrypted: 10, remaining: TOKENS - 10, destroyed: 0 });

    // Killed while the next slice runs: once it has written to the database, before it answers.
    const written = await databaseWrites(where);
    const cut = api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: { batch_size: 5 } }).catch((error: unknown) => error);
    await vi.waitFor(async () => expect(await databaseWrites(where), 'the slice has written nothing yet').toBeGreaterThan(written), { timeout: 20_000, interval: 10 });
    await running!.kill('SIGKILL');
    await cut;

    vault = await vaultOn(where, { current: masterKey });
    // Cards under either version still open.
    expect(new Set(await chargeAll(vault.url, shop, tokens.slice(0, 20)))).toEqual(new Set([201]));
    let done = await api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: {} });
    while (done.body.remaining > 0) done = await api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: {} });
    expect(done.status).toBe(200);
    expect(new Set(await chargeAll(vault.url, shop, tokens))).toEqual(new Set([201]));
    const events = await api(vault.url, 'GET', '/v1/events?limit=5', { key: shop.secretKey });
    expect(events.status).toBe(200);
    await running!.kill('SIGTERM');
    running = undefined;

    // Only the new version is left, and every card is under it.
    const check = async (query: (sql: string) => Promise<Record<string, unknown>[]>) => {
      expect(await query(`select version from merchant_data_keys where merchant_id = '${shop.id}'`)).toEqual([{ version: 2 }]);
      expect(await query(`select count(*)::int as n from tokens where merchant_id = '${shop.id}' and (data_key_version <> 2 or card_key_sealed is null)`)).toEqual([
        { n: 0 },
      ]);
    };
    if (where.databaseUrl === undefined) await withPglite(where.dataDir, check);
    else await withPostgres(where.databaseUrl, check);
  }, 180_000);

  it('moves every wrap to a new master key in restartable batches; afterwards the old key is not needed', async () => {
    const where = { dataDir: await newDataDir(storage, 'master-rewrap'), databaseUrl: storage === 'postgres' ? await newTestDatabase() : undefined };
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    let vault = await vaultOn(where, { current: oldKey });
    const shop = await createMerchant(vault);
    const tokens = (await createTokens(vault.url, shop, 20)).map((t) => t.token);
    // A merchant created under an Idempotency-Key: its stored answer (with the secret key) is sealed under the master key.
    const createdOnce = await api(vault.url, 'POST', '/v1/merchants', {
      key: vault.adminKey,
      json: { name: 'Sealed Answer Shop', allowed_origins: [] },
      headers: { 'Idempotency-Key': 'merchant-under-old-master' },
    });
    expect(createdOnce.status).toBe(201);
    expect((await api(vault.url, 'POST', '/v1/keys/rotate', { key: vault.adminKey, json: { grace_seconds: 3600 } })).status).toBe(201);
    await running!.kill('SIGTERM');

    // The new key in front, the old one behind it: everything still opens.
    vault = await vaultOn(where, { current: newKey, previous: oldKey });
    const slice = await api(vault.url, 'POST', '/v1/keys/rewrap', { key: vault.adminKey, json: { batch_size: 1, max_seconds: 0 } });
    expect(slice.body.rewrapped).toBeGreaterThan(0);
    expect(slice.body.remaining).toBeGreaterThan(0);
    await running!.kill('SIGKILL');

    vault = await vaultOn(where, { current: newKey, previous: oldKey });
    let done = await api(vault.url, 'POST', '/v1/keys/rewrap', { key: vault.adminKey, json: {} });
    while (done.body.remaining > 0) done = await api(vault.url, 'POST', '/v1/keys/rewrap', { key: vault.adminKey, json: {} });
    expect(done.body.remaining).toBe(0);
    await running!.kill('SIGTERM');

    // Only the new key from now on: cards, transport keys, fingerprints and the sealed answer all open.
    vault = await vaultOn(where, { current: newKey });
    expect(new Set(await chargeAll(vault.url, shop, tokens))).toEqual(new Set([201]));
    const replay = await api(vault.url, 'POST', '/v1/merchants', {
      key: vault.adminKey,
      json: { name: 'Sealed Answer Shop', allowed_origins: [] },
      headers: { 'Idempotency-Key': 'merchant-under-old-master' },
    });
    expect(replay.text).toBe(createdOnce.text);
    const fresh = await createTokens(vault.url, shop, 1);
    expect(fresh[0]!.card.fingerprint).toBe((await api(vault.url, 'GET', `/v1/tokens/${tokens[0]}`, { key: shop.secretKey })).body.card.fingerprint);
    await running!.kill('SIGTERM');
    running = undefined;

    // And the old key alone can open nothing any more: the vault refuses to start.
    await expect(vaultOn(where, { current: oldKey })).rejects.toThrow('exited early');
  }, 180_000);
});
