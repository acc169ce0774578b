import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { checkChannelName, type Db, type Queryable, type QueryResult, StorageUnavailableError, sqlState, VAULT_ORIGIN_PREFIX } from './db.ts';

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

/** How long the listening connection waits before connecting again after it was lost. */
const RELISTEN_DELAY_MS = 1000;

/**
 * LISTEN needs a session that stays open, which a pooled client is not: one
 * dedicated connection per `Db` carries every channel, and is opened again
 * (after `RELISTEN_DELAY_MS`) whenever it drops, until `close()`.
 */
function notificationListener(url: string, log: Logger) {
  const channels = new Map<string, Set<(payload: string) => void>>();
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const lost = (which: pg.Client, error?: Error) => {
    if (client !== which) return;
    client = undefined;
    which.end().catch(() => undefined);
    if (closed) return;
    if (error) log.warn({ err: { code: (error as { code?: string }).code, message: error.message } }, 'postgres notification connection lost; reconnecting');
    reconnectLater();
  };
  const reconnectLater = () => {
    if (retry !== undefined || closed) return;
    retry = setTimeout(() => {
      retry = undefined;
      connection().catch(() => reconnectLater());
    }, RELISTEN_DELAY_MS);
    retry.unref();
  };
  const connection = (): Promise<pg.Client> => {
    if (client) return Promise.resolve(client);
    connecting ??= (async () => {
      const fresh = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000, keepAlive: true, application_name: 'tessera-vault-listen' });
      fresh.on('notification', ({ channel, payload }) => {
        for (const onNotify of channels.get(channel) ?? []) onNotify(payload ?? '');
      });
      fresh.on('error', (error) => lost(fresh, error));
      fresh.on('end', () => lost(fresh));
      try {
        await fresh.connect();
        for (const channel of channels.keys()) await fresh.query(`listen ${channel}`);
      } catch (error) {
        fresh.end().catch(() => undefined);
        throw translate(error);
      }
      if (closed) {
        await fresh.end();
        throw new StorageUnavailableError(new Error('closed'));
      }
      client = fresh;
      return fresh;
    })().finally(() => (connecting = undefined));
    return connecting;
  };

  return {
    async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
      checkChannelName(channel);
      let listeners = channels.get(channel);
      if (listeners === undefined) {
        channels.set(channel, (listeners = new Set()));
        try {
          // LISTEN twice is harmless, so no race with a connection being made (which listens to every channel) matters.
          await (await connection()).query(`listen ${channel}`);
        } catch (error) {
          // Best effort, as documented: the channel stays, and the next connection listens to it.
          log.warn({ err: { code: (error as { code?: string }).code, message: (error as Error).message } }, 'postgres notification connection failed; retrying');
          reconnectLater();
        }
      }
      const listener = (payload: string) => onNotify(payload);
      listeners.add(listener);
      return async () => {
        if (!listeners.delete(listener) || listeners.size > 0 || channels.get(channel) !== listeners) return;
        channels.delete(channel);
        await client?.query(`unlisten ${channel}`).catch(() => undefined);
      };
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      const open = client;
      client = undefined;
      await open?.end().catch(() => undefined);
    },
  };
}

/**
 * PostgreSQL through a `pg` pool. Connection attempts and statements are
 * bounded so a stopped server turns into 503s within about a second, and the
 * pool reconnects on its own once the server is back.
 */
export async function openPostgres(url: string, log: Logger): Promise<Db> {
  // Each open storage its own name: a job notification says which vault process enqueued the job (enqueue_job.sql).
  const origin = `${VAULT_ORIGIN_PREFIX}${randomBytes(6).toString('hex')}`;
  const pool = new pg.Pool({
    connectionString: url,
    max: 16,
    connectionTimeoutMillis: 1000,
    idleTimeoutMillis: 30_000,
    query_timeout: 10_000,
    application_name: origin,
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

  const notifications = notificationListener(url, log);

  const db: Db = {
    kind: 'postgres',
    origin,
    query: (text, params) => query(pool, text, params),
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw translate(error);
      }
      // The pool stops listening for a client's errors while it is checked out, and pg emits a connection
      // cut (PostgreSQL stopping, a backend terminated) as an 'error' event even between statements:
      // unheard, it ends the process. Heard here, the next statement fails as the cut connection's does.
      let cut: Error | undefined;
      const onError = (error: Error) => (cut ??= error);
      client.on('error', onError);
      const tx: Queryable = {
        query: (text, params) => (cut === undefined ? query(client, text, params) : Promise.reject(new StorageUnavailableError(cut))),
        exec: (script) => (cut === undefined ? exec(client, script) : Promise.reject(new StorageUnavailableError(cut))),
      };
      let broken = false;
      try {
        await tx.query('begin');
        const result = await work(tx);
        await tx.query('commit');
        return result;
      } catch (error) {
        broken = error instanceof StorageUnavailableError || cut !== undefined;
        if (!broken) await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        // A client whose connection failed must not go back into the pool; the pool listens for its errors again from here.
        client.off('error', onError);
        client.release(broken || cut !== undefined);
      }
    },
    exec: (script) => exec(pool, script),
    listen: notifications.listen,
    async close() {
      await notifications.close();
      await pool.end();
    },
  };
  return db;
}
