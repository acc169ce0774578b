/**
 * The vault's one storage interface. Two adapters implement it — PGlite
 * (embedded, the default) and PostgreSQL through `pg` — over one SQL dialect,
 * so every query in the vault runs unchanged on both.
 */

export interface QueryResult<Row> {
  rows: Row[];
  /** Rows returned, inserted, updated or deleted by the statement. */
  rowCount: number;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` with the payload of every `pg_notify(channel, payload)`
   * committed on this database, by this process or any other, until the
   * returned function is called. A notification sent in a transaction that
   * rolls back never arrives. Best effort: a notification sent while the
   * listening connection is down is lost (PostgreSQL: it reconnects by
   * itself), so a listener also polls. `channel` is a plain lower-case name.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * PostgreSQL: this storage's name among the vault processes sharing the
   * database (its connections' `application_name`, `tessera-vault/…`), which
   * the jobs' notifications carry so a runner can tell the jobs its own
   * process enqueued (server/jobs/runner.ts, `ownNotifications`). Undefined
   * on PGlite: one process.
   */
  readonly origin?: string | undefined;
  close(): Promise<void>;
}

/** How the `application_name` of a vault process's pooled PostgreSQL connections begins (`Db.origin`). */
export const VAULT_ORIGIN_PREFIX = 'tessera-vault/';

/** LISTEN takes an identifier, not a parameter: channels are held to names that need no quoting. */
export function checkChannelName(channel: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new TypeError(`not a notification channel name: ${channel}`);
  return channel;
}

/**
 * The storage cannot be reached (server down, connection lost, timeout).
 * The vault fails closed on it: 503 `unavailable`, nothing stored.
 */
export class StorageUnavailableError extends Error {
  constructor(cause: unknown) {
    super('storage unavailable', { cause });
    this.name = 'StorageUnavailableError';
  }
}

/** SQLSTATE of an error raised by the database, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== '23505') return false;
  return constraint === undefined || (error as { constraint?: string }).constraint === constraint;
}
