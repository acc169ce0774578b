import { createHash } from 'node:crypto';
import type { ShopLimits } from './config.ts';
import type { ShopDb, ShopQueryable } from './db.ts';
import { tooManySignIns } from './errors.ts';

/** Failures older than this, with none since, are forgotten: the next one starts the count again. */
const FORGET_AFTER_MS = 24 * 3600_000;

/** The key as stored: a digest, so the table never holds an address someone typed. */
const keyDigest = (key: string) => createHash('sha256').update(key).digest('base64url');

/**
 * Runs work for one key at a time, in arrival order. The shop is one
 * process per database, so this is enough to make a sign-in's lock check,
 * password check and failure count one step: twenty guesses sent at once are
 * counted one after the other, not all let through before the first counts.
 */
class OneAtATime {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const gate = new Promise<void>((resolve) => (done = resolve));
    const tail = previous.then(() => gate);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      done();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/**
 * Lockout with exponential backoff for sign-ins. Failures in a row are
 * counted per account (an e-mail address, whether or not it has an account,
 * or the dashboard as seen from one client) and per client; from the
 * allowance on, each failure locks the key for the base time, doubled for
 * every failure past the first lock, up to the maximum. While a key is
 * locked every sign-in is refused with 429 before the password is looked at,
 * the right one included. Success clears the account's count, never the
 * client's: one good password must not reset a client guessing at others.
 */
export class LoginThrottle {
  readonly #db: ShopDb;
  readonly #limits: ShopLimits;
  readonly #serial = new OneAtATime();

  constructor(db: ShopDb, limits: ShopLimits) {
    this.#db = db;
    this.#limits = limits;
  }

  /**
   * One sign-in: `check` compares the password (taking the same time for an
   * unknown account) and resolves true when it matches. Resolves with what
   * `check` said; throws 429 `too_many_sign_in_attempts` while the account or
   * the client is locked, without calling `check`.
   */
  async signIn(who: { account: string; client: string }, check: () => Promise<boolean>): Promise<boolean> {
    const account = keyDigest(`account:${who.account}`);
    const client = keyDigest(`client:${who.client}`);
    // Always the client first, then the account: two sign-ins never wait on each other in opposite orders.
    return this.#serial.run(client, () =>
      this.#serial.run(account, async () => {
        const waitMs = await this.#lockedFor([account, client]);
        if (waitMs > 0) throw tooManySignIns(Math.ceil(waitMs / 1000));
        if (await check()) {
          await this.#db.query('delete from login_failures where key = $1', [account]);
          return true;
        }
        await this.#db.transaction(async (tx) => {
          await tx.query(
            `delete from login_failures where last_failed_at < now() - $1 * interval '1 millisecond' and (locked_until is null or locked_until < now())`,
            [FORGET_AFTER_MS],
          );
          await this.#countFailure(tx, account, this.#limits.loginFailuresPerEmail);
          await this.#countFailure(tx, client, this.#limits.loginFailuresPerClient);
        });
        return false;
      }),
    );
  }

  async #lockedFor(keys: string[]): Promise<number> {
    const { rows } = await this.#db.query<{ wait_ms: number | null }>(
      `select (extract(epoch from max(locked_until) - now()) * 1000)::float8 as wait_ms from login_failures where key = any($1) and locked_until > now()`,
      [keys],
    );
    return rows[0]?.wait_ms ?? 0;
  }

  async #countFailure(tx: ShopQueryable, key: string, allowance: number): Promise<void> {
    const { rows } = await tx.query<{ failures: number }>(
      `select failures from login_failures where key = $1 and last_failed_at >= now() - $2 * interval '1 millisecond'`,
      [key, FORGET_AFTER_MS],
    );
    const failures = (rows[0]?.failures ?? 0) + 1;
    const { loginLockoutBaseMs: base, loginLockoutMaxMs: max } = this.#limits;
    const lockMs = failures < allowance ? null : Math.min(max, base * 2 ** Math.min(failures - allowance, 40));
    await tx.query(
      `insert into login_failures (key, failures, last_failed_at, locked_until)
       values ($1, $2, now(), now() + $3 * interval '1 millisecond')
       on conflict (key) do update set failures = excluded.failures, last_failed_at = excluded.last_failed_at, locked_until = excluded.locked_until`,
      [key, failures, lockMs],
    );
  }
}
