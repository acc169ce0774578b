import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IdempotencyStore } from '../../server/idempotency/idempotency.ts';
import { StorageUnavailableError } from '../../server/storage/db.ts';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard } from '../support/cards.ts';
import { postgresOrSkip, type ThrowawayPostgres } from '../support/postgres.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

/** This file stops its database, so it runs on a PostgreSQL cluster of its own. */
const cluster: ThrowawayPostgres | undefined = await postgresOrSkip({ name: 'fail-closed' });

describe.skipIf(cluster === undefined)('failing closed when PostgreSQL stops', () => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage: 'postgres', name: 'fail-closed', databaseUrl: await cluster!.createDatabase() });
    shop = await createMerchant(vault);
  });
  afterAll(async () => {
    await vault?.close();
    await cluster?.destroy();
  });

  const tokenize = async () =>
    api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext()) } });

  it('answers 503 unavailable with Retry-After within 2 s of PostgreSQL stopping, and 201 again once it is back, without a restart', async () => {
    expect((await tokenize()).status).toBe(201);
    const card = await encryptCard(vault.url, cardPlaintext());

    await cluster!.stop();
    const started = Date.now();
    const down = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } });
    const answeredWithinMs = Date.now() - started;
    expect(down.status).toBe(503);
    expect(down.body.error).toMatchObject({ type: 'api', code: 'unavailable' });
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(answeredWithinMs).toBeLessThan(2000);
    const health = await api(vault.url, 'GET', '/healthz');
    expect(health.status).toBe(503);

    await cluster!.start();
    await vi.waitFor(async () => expect((await api(vault.url, 'GET', '/healthz')).status).toBe(200), { timeout: 10_000, interval: 100 });
    // The same ciphertext: the failed attempt stored nothing, not even its replay record.
    const back = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } });
    expect(back.status).toBe(201);
  });

  it('releases the Idempotency-Key claim of a request that failed while PostgreSQL was down once it is back, so its retry is not kept waiting', async () => {
    const request = { amount: 100 };
    const failed = new IdempotencyStore(vault.vault.db, 'process-outage').run('merchant:outage', 'key-outage', request, async () => {
      await cluster!.stop();
      throw new StorageUnavailableError(new Error('the work found storage gone'));
    });
    await expect(failed).rejects.toBeInstanceOf(StorageUnavailableError);

    await cluster!.start();
    // Without the release the claim would hold for 60 s: its holder is no process the store knows.
    const retried = await vi.waitFor(() => new IdempotencyStore(vault.vault.db, 'process-retry').run('merchant:outage', 'key-outage', request, async () => ({ status: 201, body: '{}' })), {
      timeout: 10_000,
      interval: 200,
    });
    expect(retried).toEqual({ status: 201, body: '{}', replayed: false });
  });

  it('fails a transaction whose connection was cut between two of its statements with unavailable, and the process lives on', async () => {
    const db = vault.vault.db;
    const cut = db.transaction(async (tx) => {
      const [{ pid }] = (await tx.query<{ pid: number }>('select pg_backend_pid() as pid')).rows as [{ pid: number }];
      // Another connection ends this one's backend while the transaction holds it between statements (as while a card is sealed).
      await db.query('select pg_terminate_backend($1)', [pid]);
      await sleep(300);
      await tx.query('select 1');
    });
    await expect(cut).rejects.toBeInstanceOf(StorageUnavailableError);
    // pg emits the cut as an 'error' event on the checked-out client; unheard, it would have ended this process.
    expect((await db.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    expect((await tokenize()).status).toBe(201);
  });
});
