import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

/** The shop's own embedded PostgreSQL: one process, one data folder, apart from the vault's. */
export type ShopDb = PGlite;
export type ShopQueryable = PGlite | Transaction;

/**
 * Opens (creating if needed) the shop's database in `<dataDir>/pgdata` and
 * applies the SQL files of `migrations/` not yet applied, in name order.
 */
export async function openShopDb(dataDir: string): Promise<ShopDb> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(join(dataDir, 'pgdata'));
  try {
    await db.transaction(async (tx) => {
      await tx.exec('create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())');
      const done = new Set((await tx.query<{ version: string }>('select version from schema_migrations')).rows.map((row) => row.version));
      for (const file of readdirSync(MIGRATIONS_DIR).filter((name) => name.endsWith('.sql')).sort()) {
        if (done.has(file)) continue;
        await tx.exec(readFileSync(join(MIGRATIONS_DIR, file), 'utf8'));
        await tx.query('insert into schema_migrations (version) values ($1)', [file]);
      }
    });
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}
