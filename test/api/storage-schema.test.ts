import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { callFunction, Composite, refusalOf } from '../../server/storage/functions.ts';
import { migrate, MigrationHistoryError, schemaSources } from '../../server/storage/migrate.ts';
import { openStorage } from '../../server/storage/open.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const silent = createLogger({ level: 'silent' });

/**
 * One database per storage for the file: opening a PGlite took most of each
 * test's time. Each test that changes the schema's records puts them back, and
 * after every test a migration must find nothing to do, so no test sees
 * another's change.
 */
describe.each(storageKinds())('the schema on %s', (storage) => {
  let db: Db | undefined;
  beforeAll(async () => {
    const where = { dataDir: await newDataDir(storage, 'schema'), databaseUrl: storage === 'postgres' ? await newTestDatabase() : undefined };
    db = await openStorage({ ...where, log: silent });
  });
  afterAll(async () => {
    await db?.close();
    db = undefined;
  });
  afterEach(async () => {
    expect(await migrate(db!), 'a test left the schema changed').toEqual([]);
  });

  it('records a checksum for every applied migration, and a second start applies nothing', async () => {
    const { rows } = await db!.query<{ version: string; checksum: string }>('select version, checksum from schema_migrations order by version');
    expect(rows).toEqual(schemaSources().migrations.map((file) => ({ version: file.name, checksum: file.checksum })));
    expect(await migrate(db!)).toEqual([]);
  });

  it('refuses to start when a migration it applied has changed since', async () => {
    const [first] = schemaSources().migrations;
    await db!.query('update schema_migrations set checksum = $2 where version = $1', [first!.name, 'f'.repeat(64)]);
    try {
      await expect(migrate(db!)).rejects.toThrow(MigrationHistoryError);
      await expect(migrate(db!)).rejects.toThrow(`The migration ${first!.name} was changed after this database applied it`);
    } finally {
      await db!.query('update schema_migrations set checksum = $2 where version = $1', [first!.name, first!.checksum]);
    }
  });

  it('refuses to start when the database applied a migration this build does not have', async () => {
    await db!.query(`insert into schema_migrations (version, checksum) values ('999_from_the_future.sql', 'x')`);
    try {
      await expect(migrate(db!)).rejects.toThrow('which this build does not have');
    } finally {
      await db!.query(`delete from schema_migrations where version = '999_from_the_future.sql'`);
    }
  });

  it('adopts the checksum of migrations recorded before checksums existed', async () => {
    await db!.query('update schema_migrations set checksum = null');
    expect(await migrate(db!)).toEqual([]);
    const { rows } = await db!.query<{ n: number }>('select count(*)::int as n from schema_migrations where checksum is null');
    expect(rows[0]!.n).toBe(0);
  });

  it('holds exactly one definition of each vault function, re-created from functions/ when one changed', async () => {
    const overloads = async () =>
      (
        await db!.query<{ name: string; n: number }>(
          `select proname as name, count(*)::int as n from pg_proc
            where pronamespace = 'public'::regnamespace and proname like 'tessera\\_%' group by proname order by proname`,
        )
      ).rows;
    const defined = definedFunctions().map((f) => f.name).sort();
    expect(await overloads()).toEqual(defined.map((name) => ({ name, n: 1 })));

    // A stale overload (as a changed signature leaves behind) goes when the functions are next applied.
    await db!.exec(`create function tessera_create_token(p_stale integer) returns text language sql as $$ select 'stale' $$`);
    await db!.query('update schema_functions set checksum = $1', ['changed']);
    expect(await migrate(db!)).toEqual(['functions']);
    expect(await overloads()).toEqual(defined.map((name) => ({ name, n: 1 })));
  });

  it('calls functions by parameter name and reports their refusals by SQLSTATE', async () => {
    const error = await callFunction(db!, 'tessera_update_token', {
      merchant_id: 'mer_none',
      token: 'tok_none',
      reusable: true,
      decline_duplicates: null,
      single_use_expires_at: new Date(),
      card: new Composite('tessera_card_details', {}),
      ciphertext_hash: null,
      ciphertext_keep_until: null,
      unique_tokens: false,
      audit_id: 'evt_none',
      actor: 'test',
      idempotency_scope: null,
      idempotency_key: null,
      idempotency_reference: null,
      position: 0,
      client_ip: '127.0.0.1',
      request_id: 'req_none',
    }).catch((e: unknown) => e);
    expect(refusalOf(error)).toEqual({ refusal: 'token_not_found', detail: undefined });
    await expect(callFunction(db!, 'tessera_update_token', { 'token; drop table tokens': 1 })).rejects.toThrow(TypeError);
  });
});

/** Every `create function` in the tree's SQL, with the file it is in. */
function definedFunctions(): { name: string; file: string }[] {
  const found: { name: string; file: string }[] = [];
  for (const dir of ['server', 'demo']) {
    for (const file of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.sql')) continue;
      const text = readFileSync(join(ROOT, dir, file), 'utf8');
      for (const match of text.matchAll(/create\s+(?:or\s+replace\s+)?function\s+([a-z_][a-z0-9_]*)/gi)) {
        found.push({ name: match[1]!, file: relative(ROOT, join(ROOT, dir, file)) });
      }
    }
  }
  return found;
}

describe('where function bodies live', () => {
  it('defines each SQL function once in the whole tree, in its own file under server/storage/functions/', () => {
    const functions = definedFunctions();
    expect(functions.length).toBeGreaterThan(0);
    const names = functions.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const { file } of functions) expect(file).toMatch(/^server\/storage\/functions\/[a-z_]+\.sql$/);
  });
});
