import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db, Queryable } from './db.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');
const FUNCTIONS_DIR = join(import.meta.dirname, 'functions');
/** Serialises vault processes migrating one PostgreSQL database at the same time. */
const MIGRATION_LOCK = 73_011_001;

interface SqlFile {
  name: string;
  text: string;
  checksum: string;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function sqlFiles(dir: string): SqlFile[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => {
      const text = readFileSync(join(dir, name), 'utf8');
      return { name, text, checksum: sha256(text) };
    });
}

/** The schema's history (`migrations/`) and the live bodies of its functions (`functions/`), as this build has them. */
export function schemaSources(): { migrations: SqlFile[]; functions: SqlFile[] } {
  return { migrations: sqlFiles(MIGRATIONS_DIR), functions: sqlFiles(FUNCTIONS_DIR) };
}

/** A migration that was applied has changed or gone since: the database and the code no longer agree on the schema. */
export class MigrationHistoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationHistoryError';
  }
}

/**
 * Brings the schema up to date, all in one transaction:
 *
 * 1. Migrations are history. Each file in `migrations/` runs once, in name
 *    order, and its SHA-256 is recorded; a start finds an applied file
 *    changed or missing and refuses (`MigrationHistoryError`), since a
 *    database that ran the old text would silently differ from a new one.
 *    Rows recorded before checksums existed adopt the file's current sum.
 * 2. Functions are code. Every file in `functions/` holds the one live body
 *    of one PL/pgSQL function; when any of them changed since the last
 *    start, the vault's functions are dropped and created again from them,
 *    so no stale overload outlives a changed signature.
 */
export async function migrate(db: Db): Promise<string[]> {
  const { migrations, functions } = schemaSources();
  return db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(`create table if not exists schema_migrations (
      version text primary key,
      applied_at timestamptz not null default now()
    );
    alter table schema_migrations add column if not exists checksum text;
    create table if not exists schema_functions (
      only_row boolean primary key default true check (only_row),
      checksum text not null
    )`);
    const applied = await checkHistory(tx, migrations);
    const ran: string[] = [];
    for (const file of migrations) {
      if (applied.has(file.name)) continue;
      await tx.exec(file.text);
      await tx.query('insert into schema_migrations (version, checksum) values ($1, $2)', [file.name, file.checksum]);
      ran.push(file.name);
    }
    if (await replaceFunctions(tx, functions)) ran.push('functions');
    return ran;
  });
}

async function checkHistory(tx: Queryable, migrations: SqlFile[]): Promise<Set<string>> {
  const { rows } = await tx.query<{ version: string; checksum: string | null }>('select version, checksum from schema_migrations');
  const files = new Map(migrations.map((file) => [file.name, file]));
  for (const row of rows) {
    const file = files.get(row.version);
    if (file === undefined) {
      throw new MigrationHistoryError(`The database has applied the migration ${row.version}, which this build does not have. Run the build that applied it.`);
    }
    if (row.checksum === null) {
      await tx.query('update schema_migrations set checksum = $2 where version = $1', [row.version, file.checksum]);
    } else if (row.checksum !== file.checksum) {
      throw new MigrationHistoryError(
        `The migration ${row.version} was changed after this database applied it. Migrations are history: restore the file and add a new migration instead.`,
      );
    }
  }
  return new Set(rows.map((row) => row.version));
}

async function replaceFunctions(tx: Queryable, functions: SqlFile[]): Promise<boolean> {
  const checksum = sha256(functions.map((file) => `${file.name}\n${file.checksum}`).join('\n'));
  const { rows } = await tx.query<{ checksum: string }>('select checksum from schema_functions');
  if (rows[0]?.checksum === checksum) return false;
  // Trigger functions stay: a trigger depends on its function, and `create or replace` keeps their one signature.
  const { rows: stale } = await tx.query<{ signature: string }>(
    `select p.oid::regprocedure::text as signature from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname like 'tessera\\_%' and p.prorettype <> 'trigger'::regtype`,
  );
  for (const { signature } of stale) await tx.exec(`drop function ${signature}`);
  for (const file of functions) await tx.exec(file.text);
  await tx.query(
    `insert into schema_functions (only_row, checksum) values (true, $1) on conflict (only_row) do update set checksum = excluded.checksum`,
    [checksum],
  );
  return true;
}
