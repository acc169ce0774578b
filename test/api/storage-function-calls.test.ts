import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { callFunction, Composite, refusalOf } from '../../server/storage/functions.ts';
import { openStorage } from '../../server/storage/open.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

// The vault's function calls (callFunction) answer as a plain query does, and keep to PGlite's one-statement-at-a-time,
// one-transaction-at-a-time rules.
describe.each(storageKinds())('function calls on %s', (storage) => {
  let db: Db;
  beforeAll(async () => {
    const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    db = await openStorage({ dataDir: await newDataDir(storage, 'function-calls'), databaseUrl, log: createLogger({ level: 'silent' }) });
    await db.exec(`
      create table test_rows (n integer);
      create function tessera_test_echo(p_text text, p_bytes bytea, p_at timestamptz, p_numbers integer[], p_flag boolean,
                                        p_card tessera_card_details, p_missing text default 'absent') returns jsonb
      language sql as $$
        select jsonb_build_object('text', p_text, 'bytes', encode(p_bytes, 'hex'), 'at', p_at, 'numbers', p_numbers, 'flag', p_flag,
                                  'last4', p_card.last4, 'missing', p_missing)
      $$;
      create function tessera_test_rows() returns integer language sql as $$ select count(*)::integer from test_rows $$;
      create function tessera_test_refuse(p_seconds integer) returns text language plpgsql as $$
      begin
        perform pg_notify('test_function_calls', 'refused');
        raise exception using errcode = 'TV005', message = 'session_exhausted', detail = p_seconds::text;
      end;
      $$;
      create function tessera_test_notify(p_payload text) returns text language plpgsql as $$
      begin
        perform pg_notify('test_function_calls', p_payload);
        return p_payload;
      end;
      $$;
    `);
  });
  afterAll(() => db?.close());

  it('answers a call as a plain query of the same call does, every time', async () => {
    const args = {
      text: 'a ünïcode text',
      bytes: Buffer.from('00ff10', 'hex'),
      at: new Date('2026-12-01T21:00:00.123Z'),
      numbers: [3, 1, 2],
      flag: false,
      card: new Composite('tessera_card_details', { last4: '4242' }),
    };
    const plain = await db.query<{ result: unknown }>(
      `select tessera_test_echo(p_text => $1, p_bytes => $2, p_at => $3, p_numbers => $4, p_flag => $5,
                                p_card => jsonb_populate_record(null::tessera_card_details, $6::jsonb)) as echoed`,
      [args.text, args.bytes, args.at, args.numbers, args.flag, JSON.stringify(args.card.json())],
    );
    const expected = {
      text: 'a ünïcode text',
      bytes: '00ff10',
      at: '2026-12-01T21:00:00.123+00:00',
      numbers: [3, 1, 2],
      flag: false,
      last4: '4242',
      missing: 'absent',
    };
    expect(plain.rows[0]!['echoed' as 'result']).toEqual(expected);
    for (let i = 0; i < 3; i++) {
      const called = await callFunction<unknown>(db, 'tessera_test_echo', args);
      expect(called.rows).toEqual([{ result: expected }]);
    }
    const nulls = await callFunction<Record<string, unknown>>(db, 'tessera_test_echo', { ...args, text: null, numbers: null });
    expect(nulls.rows[0]!.result).toMatchObject({ text: null, numbers: null });
  });

  it('rejects with the refusal and its detail, and the statement leaves nothing behind', async () => {
    const heard: string[] = [];
    const stop = await db.listen('test_function_calls', (payload) => heard.push(payload));
    const error = await callFunction(db, 'tessera_test_refuse', { seconds: 42 }).catch((e: unknown) => e);
    expect(refusalOf(error)).toEqual({ refusal: 'session_exhausted', detail: '42' });
    expect((await callFunction<string>(db, 'tessera_test_notify', { payload: 'sent' })).rows).toEqual([{ result: 'sent' }]);
    await sleep(300);
    expect(heard).toEqual(['sent']);
    await stop();
  });

  it('never runs a call made outside a transaction inside another one that is open', async () => {
    let outside: Promise<unknown> | undefined;
    await expect(
      db.transaction(async (tx) => {
        await tx.query('insert into test_rows values (1)');
        outside = callFunction<number>(db, 'tessera_test_rows', {}).then((r) => r.rows[0]!.result);
        // A round trip of the transaction's own after the call was sent: on PGlite the call has reached the
        // database's thread, and ran or waits.
        await tx.query('select 1');
        expect((await callFunction<number>(tx, 'tessera_test_rows', {})).rows[0]!.result).toBe(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await outside).toBe(0);
  });
});
