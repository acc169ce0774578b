import type { Logger } from 'pino';
import type { Db } from './db.ts';
import { migrate } from './migrate.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';

/** PostgreSQL when a URL is given, else the embedded database in the data folder; migrated either way. */
export async function openStorage(options: { databaseUrl?: string | undefined; dataDir: string; log: Logger }): Promise<Db> {
  const db = options.databaseUrl ? await openPostgres(options.databaseUrl, options.log) : await openPglite(options.dataDir);
  try {
    const applied = await migrate(db);
    if (applied.length > 0) options.log.info({ migrations: applied, storage: db.kind }, 'storage migrated');
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}
