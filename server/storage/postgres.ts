import pg from 'pg';
import type { Logger } from 'pino';
import { type Db, type Queryable, type QueryResult, StorageUnavailableError, sqlState } from './db.ts';

/** Node socket errors and SQLSTATE classes that mean "the server is not there", not "the query is wrong". */
const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_SQLSTATE = /^(08|57P0|53300)/;
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed|not queryable/i;

export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  const state = sqlState(error);
  if (state !== undefined) return CONNECTION_SQLSTATE.test(state);
  return error instanceof Error && CONNECTION_MESSAGES.test(error.message);
}

function translate(error: unknown): unknown {
  return isConnectionError(error) ? new StorageUnavailableError(error) : error;
}

const toResult = <Row>(result: pg.QueryResult): QueryResult<Row> => ({
  rows: result.rows as Row[],
  rowCount: result.rowCount ?? result.rows.length,
});

/**
 * PostgreSQL through a `pg` pool. Connection attempts and statements are
 * bounded so a stopped server turns into 503s within about a second, and the
 * pool reconnects on its own once the server is back.
 */
export async function openPostgres(url: string, log: Logger): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 16,
    connectionTimeoutMillis: 1000,
    idleTimeoutMillis: 30_000,
    query_timeout: 10_000,
    application_name: 'tessera-vault',
  });
  // An idle client losing its connection emits here; without a listener it would crash the process.
  pool.on('error', (error) => log.warn({ err: { code: (error as { code?: string }).code, message: error.message } }, 'postgres connection lost'));

  const query = async <Row>(client: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]) => {
    try {
      return toResult<Row>(await client.query(text, params as unknown[] | undefined));
    } catch (error) {
      throw translate(error);
    }
  };
  // A script of several statements answers with one result per statement; nobody reads them.
  const exec = async (client: pg.Pool | pg.PoolClient, script: string) => {
    try {
      await client.query(script);
    } catch (error) {
      throw translate(error);
    }
  };

  const db: Db = {
    kind: 'postgres',
    query: (text, params) => query(pool, text, params),
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw translate(error);
      }
      const tx: Queryable = {
        query: (text, params) => query(client, text, params),
        exec: (script) => exec(client, script),
      };
      let broken = false;
      try {
        await tx.query('begin');
        const result = await work(tx);
        await tx.query('commit');
        return result;
      } catch (error) {
        broken = error instanceof StorageUnavailableError;
        if (!broken) await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        // A client whose connection failed must not go back into the pool.
        client.release(broken);
      }
    },
    exec: (script) => exec(pool, script),
    async close() {
      await pool.end();
    },
  };
  return db;
}
