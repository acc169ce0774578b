/**
 * Rules that have one home in SQL (server/storage/functions/): whether a
 * stored card can be read or charged, and a token's reported columns; and
 * the composite values `callFunction` passes by field name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { callFunction, Composite } from '../../server/storage/functions.ts';
import { openStorage } from '../../server/storage/open.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

describe.each(storageKinds())('rules kept in SQL on %s', (storage) => {
  let db: Db;
  beforeAll(async () => {
    db = await openStorage({
      dataDir: await newDataDir(storage, 'storage-rules'),
      databaseUrl: storage === 'postgres' ? await newTestDatabase() : undefined,
      log: createLogger({ level: 'silent' }),
    });
    await db.query(`insert into merchants (id, name, publishable_key, data_key_version, fingerprint_key_sealed) values ('mer_rules', 'Rules', 'pk_test_rules', 1, '\\x00')`);
  });
  afterAll(() => db?.close());

  it.each([
    // reusable, used, expired, deleted → readable, chargeable
    [true, false, false, false, true, true],
    [true, true, false, false, true, true],
    [true, false, false, true, false, false],
    [false, false, false, false, true, true],
    [false, true, false, false, true, false],
    [false, false, true, false, false, false],
    [false, true, true, false, true, false],
    [false, false, false, true, false, false],
  ])('says reusable=%s used=%s expired=%s deleted=%s is readable=%s and chargeable=%s', async (reusable, used, expired, deleted, readable, chargeable) => {
    const token = `tok_rule_${[reusable, used, expired, deleted].map(Number).join('')}`;
    await db.query(
      `insert into tokens (merchant_id, token, reusable, brand, last4, exp_month, exp_year, fingerprint, data_key_version, expires_at, used_at, deleted_at)
       values ('mer_rules', $1, $2, 'visa', '4242', 12, 2040, 'fp_x', 1,
               case when $2 then null when $4 then now() - interval '1 minute' else now() + interval '1 minute' end,
               case when $3 then now() else null end, case when $5 then now() else null end)`,
      [token, reusable, used, expired, deleted],
    );
    const { rows } = await db.query<{ readable: boolean; chargeable: boolean }>(
      'select tessera_token_readable(tokens) as readable, tessera_token_chargeable(tokens) as chargeable from tokens where token = $1',
      [token],
    );
    expect(rows[0]).toEqual({ readable, chargeable });
  });

  it('reports a token’s columns as one json record, never its sealed card', async () => {
    const { rows } = await db.query<{ record: unknown }>(`select tessera_token_record(tokens) as record from tokens where token = 'tok_rule_1000'`);
    const record = typeof rows[0]!.record === 'string' ? JSON.parse(rows[0]!.record) : rows[0]!.record;
    expect(Object.keys(record as object).sort()).toEqual(
      [
        'brand',
        'cardholder_name',
        'created_at',
        'customer',
        'decline_duplicates',
        'exp_month',
        'exp_year',
        'expires_at',
        'fingerprint',
        'last4',
        'moto',
        'network_transaction_id',
        'reusable',
        'stored_credential_agreement',
        'token',
        'used_at',
      ].sort(),
    );
  });

  it('passes a composite by field name, bytes and times included, and leaves missing fields null', async () => {
    await db.exec(`create or replace function tessera_echo_card(p_card tessera_card_details) returns text language sql as $$
      select concat_ws('|', p_card.brand, encode(p_card.card_sealed, 'hex'), p_card.exp_month, p_card.cvc_bucket,
                       to_char(p_card.cvc_expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), coalesce(p_card.last4, 'null'))
    $$`);
    const { rows } = await callFunction<string>(db, 'tessera_echo_card', {
      card: new Composite('tessera_card_details', {
        brand: 'visa',
        card_sealed: Buffer.from([0x01, 0xab, 0x00, 0xff]),
        exp_month: 7,
        cvc_bucket: 2_959_000_000,
        cvc_expires_at: new Date('2030-01-02T03:04:05Z'),
      }),
    });
    expect(rows[0]!.result).toBe('visa|01ab00ff|7|2959000000|2030-01-02T03:04:05|null');
  });
});
