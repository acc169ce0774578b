import type { Queryable, QueryResult } from './db.ts';
import { sqlState } from './db.ts';

/** A value of one of the vault's composite types (e.g. `tessera_card_details`), passed by field name. */
export class Composite {
  constructor(
    readonly type: `tessera_${string}`,
    readonly fields: Record<string, unknown>,
  ) {}

  /** Its fields as `jsonb_populate_record` reads them (`jsonFields`). */
  json(): Record<string, unknown> {
    return jsonFields(this.fields);
  }
}

/**
 * Named values as `jsonb_populate_record` and `jsonb_to_recordset` read them:
 * bytes in PostgreSQL's hex form, a `Composite` as its fields, times in ISO
 * 8601. Mapped before JSON.stringify: a Buffer's own toJSON would run first.
 * A null is left out: both read a missing field as null, and a grouped
 * tokenization's entry has some twenty, written by one thread and parsed by
 * another.
 */
export function jsonFields(fields: Record<string, unknown>): Record<string, unknown> {
  // A plain loop, on every tokenization's way: with JSON.stringify, 7.0 µs for a 34-argument call against 14.5 through entries → map → fromEntries.
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value === null || value === undefined) continue;
    out[key] =
      value instanceof Composite ? value.json() : value instanceof Uint8Array ? `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}` : value;
  }
  return out;
}

const NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Calls one of the vault's PL/pgSQL functions (`functions/*.sql`) with named
 * arguments — `tessera_create_token(p_merchant_id => $1, …)` — so each value
 * is matched to its parameter by name, not by its place in a long list. A
 * `Composite` argument is sent as json and built by field name too
 * (`jsonb_populate_record`), so a field missing from it is null. The answer
 * is the one column `result`.
 */
export async function callFunction<Result>(q: Queryable, name: `tessera_${string}`, args: Record<string, unknown>): Promise<QueryResult<{ result: Result }>> {
  const { list, values } = namedArguments(name, args);
  return q.query<{ result: Result }>(`select ${name}(${list}) as result`, values);
}

/**
 * Calls one of the vault's set-returning functions (`returns table (…)`) as
 * `callFunction` calls the others, and answers its rows: a statement the
 * vault runs often, kept in a function so that it is planned once per
 * connection (its `SET` clauses say how), where PGlite would parse and plan
 * it as plain text at every call.
 */
export async function selectFunction<Row>(q: Queryable, name: `tessera_${string}`, args: Record<string, unknown>): Promise<QueryResult<Row>> {
  const { list, values } = namedArguments(name, args);
  return q.query<Row>(`select * from ${name}(${list})`, values);
}

function namedArguments(name: string, args: Record<string, unknown>): { list: string; values: unknown[] } {
  const names = Object.keys(args);
  for (const argument of [name, ...names]) {
    if (!NAME.test(argument)) throw new TypeError(`not a function or parameter name: ${argument}`);
  }
  const values = Object.values(args);
  const list = names.map((argument, i) => {
    const value = values[i];
    if (!(value instanceof Composite)) return `p_${argument} => $${i + 1}`;
    if (!NAME.test(value.type)) throw new TypeError(`not a type name: ${value.type}`);
    values[i] = JSON.stringify(value.json());
    return `p_${argument} => jsonb_populate_record(null::${value.type}, $${i + 1}::jsonb)`;
  });
  return { list: list.join(', '), values };
}

const FUNCTION_CALL = /^select (?:tessera_[a-z0-9_]+\(.*\) as result|\* from tessera_[a-z0-9_]+\(.*\))$/s;

/**
 * Whether `sql` is a call `callFunction` or `selectFunction` made: a few
 * fixed texts, one per call site, whose plan is a bare function call — so
 * PGlite runs them as named prepared statements (pglite-prepared.ts), where
 * a generic plan loses nothing.
 */
export const isFunctionCall = (sql: string): boolean => FUNCTION_CALL.test(sql);

/**
 * The refusals the vault's functions raise on purpose, by SQLSTATE (class
 * `TV`, which PostgreSQL does not use): a refusal rolls the statement back,
 * and the service turns it into the API's answer.
 */
const REFUSALS = {
  TV001: 'replayed_ciphertext',
  TV002: 'duplicate_card',
  TV003: 'token_value_taken',
  TV004: 'session_invalid',
  TV005: 'session_exhausted',
  TV006: 'token_not_found',
  TV007: 'token_used',
  TV008: 'item_already_applied',
  TV009: 'decline_velocity',
  // Not an answer to anyone: a job's work found its claim gone (server/jobs), so it rolled back.
  TV010: 'job_claim_lost',
  TV011: 'unknown_kid',
  TV012: 'idempotency_mismatch',
  TV013: 'idempotency_in_flight',
} as const;

export type Refusal = (typeof REFUSALS)[keyof typeof REFUSALS];

/** The refusal a vault function raised, with its detail (e.g. seconds left), or undefined for any other error. */
export function refusalOf(error: unknown): { refusal: Refusal; detail: string | undefined } | undefined {
  const state = sqlState(error);
  if (state === undefined || !Object.hasOwn(REFUSALS, state)) return undefined;
  const detail = (error as { detail?: unknown }).detail;
  return { refusal: REFUSALS[state as keyof typeof REFUSALS], detail: typeof detail === 'string' ? detail : undefined };
}
