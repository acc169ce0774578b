import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

describe.each(storageKinds())('notifications on %s', (storage) => {
  let db: Db;
  beforeAll(async () => {
    const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    db = await openStorage({ dataDir: await newDataDir(storage, 'notify'), databaseUrl, log: createLogger({ level: 'silent' }) });
  });
  afterAll(() => db?.close());

  /** Waits long enough for a notification that was sent to have arrived. */
  const settle = () => sleep(300);

  it('reach a listener when the transaction that sent them commits, and never when it rolls back', async () => {
    const heard: string[] = [];
    const stop = await db.listen('test_channel', (payload) => heard.push(payload));
    await db.transaction(async (tx) => {
      await tx.query(`select pg_notify('test_channel', 'committed')`);
      await settle();
      expect(heard).toEqual([]);
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query(`select pg_notify('test_channel', 'rolled back')`);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await db.query(`select pg_notify('other_channel', 'elsewhere')`);
    await settle();
    expect(heard).toEqual(['committed']);
    await stop();
    await db.query(`select pg_notify('test_channel', 'after stop')`);
    await settle();
    expect(heard).toEqual(['committed']);
  });

  it('refuses a channel name that would need quoting', async () => {
    await expect(db.listen('jobs; drop table jobs', () => undefined)).rejects.toThrow(TypeError);
  });
});
