import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './db.ts';

interface PgliteResults<Row> {
  rows: Row[];
  affectedRows?: number;
}

const toResult = <Row>(result: PgliteResults<Row>): QueryResult<Row> => ({
  rows: result.rows,
  rowCount: result.affectedRows || result.rows.length,
});

/**
 * PGlite runs Postgres inside this process, so only one process may open a
 * data folder at a time; a second one would corrupt it. A lock file holding
 * the owner's pid guards it, and a lock left by a killed process is taken over.
 */
function lockDataFolder(dir: string): () => void {
  const lockPath = join(dir, 'vault.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(`The data folder ${dir} is in use by another vault process (pid ${owner}).`);
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`Could not lock the data folder ${dir}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The embedded database in `<dataDir>/pgdata`. */
export async function openPglite(dataDir: string): Promise<Db> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataFolder(dataDir);
  let pg: PGlite;
  try {
    pg = await PGlite.create(join(dataDir, 'pgdata'));
  } catch (error) {
    unlock();
    throw error;
  }
  const wrap = (target: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    query: async <Row>(text: string, params?: readonly unknown[]) =>
      toResult<Row>(await target.query<Row>(text, params as unknown[] | undefined)),
    exec: async (script) => void (await target.exec(script)),
  });
  return {
    kind: 'pglite',
    ...wrap(pg),
    transaction: (work) => pg.transaction((tx) => work(wrap(tx))),
    async close() {
      try {
        await pg.close();
      } finally {
        unlock();
      }
    },
  };
}
