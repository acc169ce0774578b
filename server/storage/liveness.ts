import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Db, Queryable } from './db.ts';

/** How long a process counts as alive after its last renewal, and how often it renews. */
export const LIVENESS_LEASE_SECONDS = 5;
const RENEW_EVERY_MS = 1000;
/** Rows of dead processes are kept a while, so their claims can still be judged; then housekeeping drops them. */
const FORGET_AFTER = '10 minutes';
/**
 * A lease ended now is set this far back: claims count as abandoned when
 * `alive_until < now()`, strictly, and the next statement can read the same
 * clock: PGlite's `now()` has millisecond ticks (two statements in a row
 * read the same value 1,557 times in 2,000, measured) — a retry right after
 * a clean stop was then told the claim was still in flight (CI).
 */
const ENDED = "now() - interval '1 second'";

/**
 * This vault process's row in `vault_processes`, renewed every second with a
 * lease of `LIVENESS_LEASE_SECONDS`. Work it claims (an Idempotency-Key)
 * names it, so once it stops renewing — killed, its host gone — another
 * process may take that work over within seconds rather than after the
 * 60-second abandonment. A renewal that fails (storage down) is tried again
 * on the next tick; a lease that ran out meanwhile only lets others take
 * over claims whose requests failed anyway, and the work's own keys (the
 * JWE's replay record, the payment's id) refuse a second run.
 */
export class ProcessLiveness {
  /** Unique per start: host, pid and random bits. */
  readonly id = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  readonly #db: Db;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  private constructor(db: Db, log: Logger) {
    this.#db = db;
    this.#log = log;
  }

  /**
   * Registers this process and starts renewing. On PGlite this process is
   * the store's only owner, so every other row is a process that died.
   */
  static async start(db: Db, log: Logger): Promise<ProcessLiveness> {
    const liveness = new ProcessLiveness(db, log);
    if (db.kind === 'pglite') await db.query(`update vault_processes set alive_until = least(alive_until, ${ENDED})`);
    await liveness.#renew();
    liveness.#timer = setInterval(() => {
      liveness.#renew().catch((error: unknown) => liveness.#log.debug({ err: error }, 'process lease not renewed; retrying'));
    }, RENEW_EVERY_MS);
    liveness.#timer.unref();
    return liveness;
  }

  /** Stops renewing and ends the lease: a process that stopped cleanly holds no claim. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#db.query(`update vault_processes set alive_until = ${ENDED} where id = $1`, [this.id]).catch(() => undefined);
  }

  async #renew(): Promise<void> {
    await this.#db.query(
      `insert into vault_processes (id, alive_until) values ($1, now() + make_interval(secs => $2))
       on conflict (id) do update set alive_until = excluded.alive_until`,
      [this.id, LIVENESS_LEASE_SECONDS],
    );
  }
}

/** Drops the rows of processes dead for a while (housekeeping). */
export async function forgetDeadProcesses(q: Queryable): Promise<number> {
  return (await q.query(`delete from vault_processes where alive_until < now() - interval '${FORGET_AFTER}'`)).rowCount;
}
