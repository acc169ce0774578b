import type { Db, Queryable } from '../storage/db.ts';

/** Hits of one key in its current window. */
export interface WindowCount {
  hits: number;
  /** Milliseconds until the window ends. */
  msLeft: number;
}

/**
 * Where a key's window starts: `clock` windows are aligned to multiples of
 * the window's length (a rate limit's clock minute), `first-hit` windows
 * start at the key's first hit (a failed authentication).
 */
export type WindowAlignment = 'clock' | 'first-hit';

export interface WindowOptions {
  /** Keeps one counter's keys apart from another's in a shared table. */
  namespace: string;
  windowMs: number;
  alignment: WindowAlignment;
}

/** Hits counted per key in fixed windows: the rate limits and the failed-authentication throttle count with these. */
export interface WindowCounters {
  /** Counts one hit, returning the window's hits so far, this one included. */
  add(key: string): Promise<WindowCount>;
  /** The window's hits without counting one; undefined when the key has none in a running window. */
  peek(key: string): Promise<WindowCount | undefined>;
}

/**
 * The counters a vault process should use: in the database on PostgreSQL,
 * where several processes share one store and must count together; in memory
 * on PGlite, whose single process owns the store (and whose one database
 * thread is better spent on tokens than on a write per request).
 */
export function windowCounters(db: Db, options: WindowOptions): WindowCounters {
  return db.kind === 'postgres' ? new SharedWindowCounters(db, options) : new MemoryWindowCounters(options);
}

/** Counters of one process, in memory. `now` is injectable for tests of the window arithmetic. */
export class MemoryWindowCounters implements WindowCounters {
  readonly #options: WindowOptions;
  readonly #now: () => number;
  readonly #windows = new Map<string, { endsAt: number; hits: number }>();
  #lastSweep = 0;

  constructor(options: WindowOptions, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  async add(key: string): Promise<WindowCount> {
    return this.addNow(key);
  }

  /** `add`, synchronously. */
  addNow(key: string): WindowCount {
    const now = this.#now();
    let window = this.#current(key, now);
    if (window === undefined) {
      window = { endsAt: this.#newWindowEnd(now), hits: 0 };
      this.#windows.set(key, window);
    }
    window.hits++;
    return { hits: window.hits, msLeft: window.endsAt - now };
  }

  async peek(key: string): Promise<WindowCount | undefined> {
    const now = this.#now();
    const window = this.#current(key, now);
    return window === undefined ? undefined : { hits: window.hits, msLeft: window.endsAt - now };
  }

  #newWindowEnd(now: number): number {
    const { windowMs, alignment } = this.#options;
    return alignment === 'clock' ? now - (now % windowMs) + windowMs : now + windowMs;
  }

  /** The key's window if it is still running; ended windows are forgotten (all of them, once a window). */
  #current(key: string, now: number): { endsAt: number; hits: number } | undefined {
    if (now - this.#lastSweep >= this.#options.windowMs) {
      this.#lastSweep = now;
      for (const [name, window] of this.#windows) if (window.endsAt <= now) this.#windows.delete(name);
    }
    const window = this.#windows.get(key);
    if (window === undefined || window.endsAt > now) return window;
    this.#windows.delete(key);
    return undefined;
  }
}

/**
 * Counters every vault process on one database shares (`rate_limit_counters`,
 * one row per key, reset in place once its window has ended). Each hit is
 * one atomic upsert, and windows are judged by the database's clock, so
 * nodes whose clocks disagree still count in the same windows.
 */
export class SharedWindowCounters implements WindowCounters {
  readonly #db: Queryable;
  readonly #options: WindowOptions;
  readonly #windowSeconds: number;

  constructor(db: Queryable, options: WindowOptions) {
    this.#db = db;
    this.#options = options;
    this.#windowSeconds = options.windowMs / 1000;
  }

  async add(key: string): Promise<WindowCount> {
    const newEnd =
      this.#options.alignment === 'clock'
        ? 'to_timestamp((floor(extract(epoch from now())::float8 / $2::float8) + 1) * $2::float8)'
        : 'now() + make_interval(secs => $2::float8)';
    const { rows } = await this.#db.query<{ hits: number; ms_left: number }>(
      `insert into rate_limit_counters as c (key, window_ends_at, hits) values ($1, ${newEnd}, 1)
       on conflict (key) do update set
         hits = case when c.window_ends_at <= now() then 1 else c.hits + 1 end,
         window_ends_at = case when c.window_ends_at <= now() then excluded.window_ends_at else c.window_ends_at end
       returning hits, (extract(epoch from (window_ends_at - now())) * 1000)::float8 as ms_left`,
      [this.#key(key), this.#windowSeconds],
    );
    return { hits: rows[0]!.hits, msLeft: rows[0]!.ms_left };
  }

  async peek(key: string): Promise<WindowCount | undefined> {
    const { rows } = await this.#db.query<{ hits: number; ms_left: number }>(
      `select hits, (extract(epoch from (window_ends_at - now())) * 1000)::float8 as ms_left
         from rate_limit_counters where key = $1 and window_ends_at > now()`,
      [this.#key(key)],
    );
    return rows[0] === undefined ? undefined : { hits: rows[0].hits, msLeft: rows[0].ms_left };
  }

  #key(key: string): string {
    return `${this.#options.namespace}/${key}`;
  }
}

/** Forgets counters whose window has ended (housekeeping; a no-op where the counters live in memory). */
export async function purgeEndedCounters(q: Queryable): Promise<number> {
  return (await q.query('delete from rate_limit_counters where window_ends_at <= now()')).rowCount;
}
