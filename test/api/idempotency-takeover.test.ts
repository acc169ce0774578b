/**
 * An Idempotency-Key claim names the vault process holding it: a retry
 * takes over at once the claim of a process that died (its lease in
 * `vault_processes` ran out), waits (409) while the holder lives, and a
 * process that stops cleanly leaves nothing to wait for. Two processes are
 * two `IdempotencyStore`s with liveness rows of their own on one database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultError } from '../../server/errors.ts';
import { IdempotencyStore, type StoredResponse } from '../../server/idempotency/idempotency.ts';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { ProcessLiveness } from '../../server/storage/liveness.ts';
import { openStorage } from '../../server/storage/open.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

const log = createLogger({ level: 'silent' });
const ok: StoredResponse = { status: 201, body: '{"done":true}' };

describe.each(storageKinds())('Idempotency-Key claims of vault processes on %s', (storage) => {
  let db: Db;
  beforeAll(async () => {
    const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    db = await openStorage({ dataDir: await newDataDir(storage, 'claims'), databaseUrl, log });
  });
  afterAll(() => db?.close());

  /** A request claimed by `holder` whose work never ends, as in a process killed mid-request. */
  const claimForever = (holder: string, key: string) => {
    void new IdempotencyStore(db, holder).run('merchant:claims', key, { same: 'request' }, () => new Promise<StoredResponse>(() => undefined));
  };
  const claimed = async (key: string) =>
    (await db.query('select 1 from idempotency_keys where scope = $1 and key = $2', ['merchant:claims', key])).rowCount === 1;
  const retry = (key: string, by = 'process-b') => new IdempotencyStore(db, by).run('merchant:claims', key, { same: 'request' }, async () => ok);

  const setLease = (holder: string, alive: boolean) =>
    db.query(
      `insert into vault_processes (id, alive_until) values ($1, now() + make_interval(secs => $2))
       on conflict (id) do update set alive_until = excluded.alive_until`,
      [holder, alive ? 30 : -1],
    );

  it('lets a retry take over at once the claim of a process whose lease has run out', async () => {
    await setLease('process-dead', true);
    claimForever('process-dead', 'key-dead');
    await expect.poll(() => claimed('key-dead')).toBe(true);
    await setLease('process-dead', false);
    expect(await retry('key-dead')).toEqual({ ...ok, replayed: false });
  });

  it('answers a retry 409 idempotency_in_flight while the process holding the claim is alive', async () => {
    await setLease('process-alive', true);
    claimForever('process-alive', 'key-alive');
    await expect.poll(() => claimed('key-alive')).toBe(true);
    await expect(retry('key-alive')).rejects.toMatchObject({ code: 'idempotency_in_flight' } satisfies Partial<VaultError>);
  });

  it('lets a retry take over the claims of a process that stopped, as soon as it has stopped', async () => {
    const stopping = await ProcessLiveness.start(db, log);
    claimForever(stopping.id, 'key-stopped');
    await expect.poll(() => claimed('key-stopped')).toBe(true);
    await expect(retry('key-stopped')).rejects.toMatchObject({ code: 'idempotency_in_flight' });
    await stopping.stop();
    expect(await retry('key-stopped')).toEqual({ ...ok, replayed: false });
  });

  it('never releases a claim a retry has taken over: the late failure of the first request leaves the second one’s claim', async () => {
    await setLease('process-slow', true);
    let failFirst!: (error: Error) => void;
    const first = new IdempotencyStore(db, 'process-slow').run('merchant:claims', 'key-slow', { same: 'request' }, () =>
      new Promise<StoredResponse>((_, reject) => (failFirst = reject)),
    );
    await expect.poll(() => claimed('key-slow')).toBe(true);
    await setLease('process-slow', false);
    let finishSecond!: (response: StoredResponse) => void;
    const second = new IdempotencyStore(db, 'process-b').run('merchant:claims', 'key-slow', { same: 'request' }, () =>
      new Promise<StoredResponse>((resolve) => (finishSecond = resolve)),
    );
    await expect.poll(() => finishSecond !== undefined).toBe(true);
    failFirst(new Error('the first request failed late'));
    await expect(first).rejects.toThrow('failed late');
    // The second request's claim is still there: a third is told it is in flight, not let in to run again.
    await expect(retry('key-slow', 'process-c')).rejects.toMatchObject({ code: 'idempotency_in_flight' });
    finishSecond(ok);
    await second;
  });
});
