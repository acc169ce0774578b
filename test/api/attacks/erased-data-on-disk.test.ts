/**
 * Review finding 4: "erased" CVCs stayed decryptable on disk — erasure was
 * `UPDATE … = null`, and old row versions and the WAL kept the ciphertext
 * under a merchant key that never changed. Now a CVC is sealed under a
 * short-lived bucket key that is destroyed (deleted, and its unlogged table
 * rewritten) once every CVC in it is past its lifetime; a card under a key of
 * its own, erased with the token and left unopenable once the merchant's data
 * key is rolled.
 *
 * Each test scans every file of the database's storage (the PGlite data
 * folder, or the whole PostgreSQL cluster) for the ciphertext, shows it is
 * still there, and tries every key the vault still holds on every copy.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { aad, open } from '../../../server/keys/envelope.ts';
import { MasterKey } from '../../../server/keys/master-key.ts';
import { api, createMerchant, type TestMerchant } from '../../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../../support/cards.ts';
import { filesUnder, withPostgres } from '../../support/leaks.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../support/postgres.ts';
import { startTestVault, storageKinds, type TestVault } from '../../support/vault.ts';

const silent = pino({ level: 'silent' });

describe.each(storageKinds())('erased card data on disk, on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let master: MasterKey;
  // A cluster of its own on PostgreSQL: the scan reads every file of the cluster, and the suite's shared one holds every other test's databases.
  let cluster: ThrowawayPostgres | undefined;

  beforeAll(async () => {
    if (storage === 'postgres') cluster = await startThrowawayPostgres({ name: 'erasure-scan' });
    vault = await startTestVault({
      storage,
      ...(cluster === undefined ? {} : { databaseUrl: await cluster.createDatabase() }),
      name: 'erasure-on-disk',
      // Short CVC buckets and lifetime so a bucket ends within the test; housekeeping only when the test asks.
      env: { TESSERA_CVC_LIFETIME_SECONDS: '2', TESSERA_CVC_BUCKET_SECONDS: '1', TESSERA_MAINTENANCE_SECONDS: '3600' },
    });
    shop = await createMerchant(vault);
    master = MasterKey.load({ dataDir: vault.dataDir, log: silent });
  });
  afterAll(async () => {
    await vault?.close();
    await cluster?.destroy();
  });

  const query = <Row>(sql: string, params: unknown[] = []) => vault.vault.db.query<Row>(sql, params).then((r) => r.rows);

  /** Every byte of the storage's files, after the database wrote what it holds in memory. */
  async function storageFiles(): Promise<{ path: string; bytes: Buffer }[]> {
    let dir: string;
    if (cluster !== undefined) {
      await withPostgres(cluster.url, (q) => q('checkpoint'));
      dir = cluster.dataDir;
    } else {
      // PGlite writes its pages at a checkpoint, as PostgreSQL does.
      await vault.vault.db.exec('checkpoint');
      dir = `${vault.dataDir}/pgdata`;
    }
    return filesUnder(dir).flatMap((path) => {
      try {
        return [{ path, bytes: readFileSync(path) }];
      } catch {
        return []; // a file the server removed while we listed them
      }
    });
  }

  /** How many times `needle` occurs in the storage's files. */
  const copiesOnDisk = (files: { bytes: Buffer }[], needle: Uint8Array) =>
    files.reduce((n, file) => {
      let count = 0;
      for (let at = file.bytes.indexOf(needle); at !== -1; at = file.bytes.indexOf(needle, at + 1)) count++;
      return n + count;
    }, 0);

  /** Every symmetric key the vault still holds: its master key, every merchant data key, every CVC bucket key, every card key. */
  async function keysStillHeld(): Promise<Buffer[]> {
    const keys: Buffer[] = [];
    const unwrap = (sealed: Uint8Array, context: string) => {
      try {
        keys.push(master.unwrap(sealed, context));
      } catch {
        // not a wrap of this kind
      }
    };
    for (const row of await query<{ merchant_id: string; version: number; key_sealed: Uint8Array }>('select * from merchant_data_keys')) {
      unwrap(row.key_sealed, aad.dataKey(row.merchant_id, row.version));
    }
    for (const row of await query<{ bucket: string; key_sealed: Uint8Array }>('select * from cvc_keys')) unwrap(row.key_sealed, aad.cvcKey(Number(row.bucket)));
    const dataKeys = [...keys];
    for (const row of await query<{ merchant_id: string; token: string; data_key_version: number; card_key_sealed: Uint8Array }>(
      'select merchant_id, token, data_key_version, card_key_sealed from tokens where card_key_sealed is not null',
    )) {
      for (const dataKey of dataKeys) {
        try {
          keys.push(open(dataKey, row.card_key_sealed, aad.cardKey(row.merchant_id, row.token, row.data_key_version)));
        } catch {
          // another merchant's data key
        }
      }
    }
    return keys;
  }

  const opensWithAny = (keys: Buffer[], sealed: Uint8Array, context: string) =>
    keys.some((key) => {
      try {
        open(key, sealed, context);
        return true;
      } catch {
        return false;
      }
    });

  it('leaves an erased CVC on disk only as ciphertext nothing opens, once its bucket has ended', async () => {
    const created = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)) } });
    expect(created.status).toBe(201);
    const [row] = await query<{ cvc_sealed: Uint8Array; cvc_bucket: string }>('select cvc_sealed, cvc_bucket from tokens where token = $1', [created.body.token]);
    const cvc = Buffer.from(row!.cvc_sealed);
    const bucket = Number(row!.cvc_bucket);
    const [bucketKey] = await query<{ key_sealed: Uint8Array }>('select key_sealed from cvc_keys where bucket = $1', [bucket]);
    const wrappedBucketKey = Buffer.from(bucketKey!.key_sealed);
    const context = aad.cvc(shop.id, created.body.token, bucket);

    // The first authorization uses the CVC and erases it.
    const paid = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: created.body.token, amount: 500, currency: 'EUR' } });
    expect(paid.status).toBe(201);
    expect((await query('select 1 from tokens where token = $1 and cvc_sealed is null', [created.body.token])).length).toBe(1);

    // Past the bucket's end plus the CVC lifetime (seconds here), a housekeeping round destroys the bucket key.
    await vi.waitFor(
      async () => {
        await vault.vault.maintain();
        expect(await query('select 1 from cvc_keys where bucket = $1', [bucket]), 'the bucket key still exists').toEqual([]);
      },
      { timeout: 15_000, interval: 250 },
    );

    const files = await storageFiles();
    // The erased CVC's ciphertext is still on disk (WAL, old row versions)...
    expect(copiesOnDisk(files, cvc)).toBeGreaterThan(0);
    // ...but no key the vault holds opens it, and its bucket key left no copy anywhere (its table is never in the WAL).
    expect(opensWithAny(await keysStillHeld(), cvc, context)).toBe(false);
    expect(copiesOnDisk(files, wrappedBucketKey)).toBe(0);
    // The card itself is untouched: only the CVC is gone.
    const again = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: created.body.token, amount: 500, currency: 'EUR' } });
    expect(again.status).toBe(201);
  });

  it('leaves a deleted token’s card on disk only as ciphertext nothing opens, and its card key too once the data key is rolled', async () => {
    const created = await api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.mastercard)) },
    });
    expect(created.status).toBe(201);
    const { token } = created.body;
    const [row] = await query<{ card_sealed: Uint8Array; card_key_sealed: Uint8Array; data_key_version: number }>(
      'select card_sealed, card_key_sealed, data_key_version from tokens where token = $1',
      [token],
    );
    const card = Buffer.from(row!.card_sealed);
    const cardKey = Buffer.from(row!.card_key_sealed);
    const cardKeyContext = aad.cardKey(shop.id, token, row!.data_key_version);

    expect((await api(vault.url, 'DELETE', `/v1/tokens/${token}`, { key: shop.secretKey })).status).toBe(200);
    let files = await storageFiles();
    expect(copiesOnDisk(files, card)).toBeGreaterThan(0);
    expect(opensWithAny(await keysStillHeld(), card, aad.card(shop.id))).toBe(false);

    // A copy of the wrapped card key outlives the delete in the WAL; rolling the data key makes it unopenable.
    const rolled = await api(vault.url, 'POST', `/v1/merchants/${shop.id}/data-key/roll`, { key: vault.adminKey, json: {} });
    expect(rolled.status).toBe(201);
    const reencrypted = await api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: {} });
    expect(reencrypted.body).toMatchObject({ remaining: 0, destroyed: 1 });
    files = await storageFiles();
    expect(copiesOnDisk(files, cardKey)).toBeGreaterThan(0);
    const held = await keysStillHeld();
    expect(opensWithAny(held, cardKey, cardKeyContext)).toBe(false);
    expect(opensWithAny(held, card, aad.card(shop.id))).toBe(false);
  });
});
