import { Coalescer } from '../lib/coalesce.ts';
import type { Db } from '../storage/db.ts';
import { callFunction, jsonFields, refusalOf } from '../storage/functions.ts';

/** Tokenizations written by one `tessera_create_tokens` statement at most. */
const MAX_PER_STATEMENT = 32;

/**
 * After a group refused in part, how long groups go isolated at once: a
 * client whose requests are refused (replays, a spent session) then costs
 * a statement a group, not two.
 */
const ISOLATED_AFTER_REFUSAL_MS = 1_000;

/** One entry's answer in a group: `tessera_create_token`'s result, or the refusal it raised. */
type Answer = { result: string } | { state: string; message: string; detail: string | null };

/**
 * `tessera_create_token` calls as a group commit: the tokenizations that
 * arrive while one statement runs wait and go together as the next one,
 * `tessera_create_tokens` (`Coalescer`); a lone tokenization goes at once,
 * as the plain call. Every statement costs a fixed amount besides its work
 * (the round trip, the bind of forty arguments, the commit) — on PGlite to
 * its one database thread, on PostgreSQL to the cluster's processes — and
 * under load a group pays it once (docs/benchmarks.md, "Tokenizations in
 * groups"). On PGlite, whose one connection runs a statement at a time
 * anyway, one group at a time per process; on PostgreSQL one per merchant,
 * so an entry that waits for its merchant's audit chain (held by a token
 * batch's chunk, say) holds up only tokenizations that would have waited
 * for that chain too, never another merchant's.
 *
 * A group goes first as one transaction (`p_isolated` false): with no
 * refusal in it, that is all, without a subtransaction an entry. A refusal
 * fails that statement whole, nothing written, and the group goes again
 * isolated: each entry in a subtransaction of its own, so a refusal is that
 * tokenization's answer alone, raised to its caller as the error the plain
 * call raises (its SQLSTATE and detail). A group whose statement fails for
 * any other reason is run again one by one, so any other error is the
 * plain call's too.
 */
export class TokenStatements {
  readonly #db: Db;
  /** The groups forming, by merchant on PostgreSQL (one, under '', on PGlite), with the calls each has in hand. */
  readonly #groups = new Map<string, { coalescer: Coalescer<Record<string, unknown>, Answer>; calls: number }>();
  /** Until when (`performance.now()`) groups go isolated at once, after one refused in part. */
  #isolatedUntil = 0;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Tokenizations waiting for the next statement, while one runs. */
  get waiting(): number {
    let waiting = 0;
    for (const group of this.#groups.values()) waiting += group.coalescer.waiting;
    return waiting;
  }

  /** `tessera_create_token(args)`'s answer, or its refusal thrown. */
  async create(args: Record<string, unknown>): Promise<string> {
    const key = this.#db.kind === 'postgres' ? String(args['merchant_id']) : '';
    let group = this.#groups.get(key);
    if (!group) {
      group = { coalescer: new Coalescer((entries) => this.#write(entries), { max: MAX_PER_STATEMENT }), calls: 0 };
      this.#groups.set(key, group);
    }
    group.calls += 1;
    let answer: Answer;
    try {
      answer = await group.coalescer.call(args);
    } finally {
      // The last call in hand answered: the coalescer is idle, and a merchant seen once is not kept.
      if (--group.calls === 0 && this.#groups.get(key) === group) this.#groups.delete(key);
    }
    if ('result' in answer) return answer.result;
    throw Object.assign(new Error(answer.message), { code: answer.state, ...(answer.detail === null ? {} : { detail: answer.detail }) });
  }

  async #write(entries: Record<string, unknown>[]): Promise<readonly Answer[]> {
    if (entries.length === 1) {
      // Alone: the plain call, whose error (a refusal too) is its caller's.
      const { rows } = await callFunction<string>(this.#db, 'tessera_create_token', entries[0]!);
      return [{ result: rows[0]!.result }];
    }
    const json = JSON.stringify(entries.map(jsonFields));
    if (performance.now() >= this.#isolatedUntil) {
      try {
        return this.#answers(await callFunction<Answer[]>(this.#db, 'tessera_create_tokens', { entries: json, isolated: false }), entries);
      } catch (error) {
        if (refusalOf(error) === undefined) throw error;
        this.#isolatedUntil = performance.now() + ISOLATED_AFTER_REFUSAL_MS;
      }
    }
    return this.#answers(await callFunction<Answer[]>(this.#db, 'tessera_create_tokens', { entries: json, isolated: true }), entries);
  }

  #answers({ rows }: { rows: { result: Answer[] }[] }, entries: readonly unknown[]): readonly Answer[] {
    const answers = rows[0]!.result;
    if (answers.length !== entries.length) throw new Error(`tessera_create_tokens answered ${answers.length} entries for ${entries.length}`);
    return answers;
  }
}
