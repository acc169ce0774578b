import type { Queryable, QueryResult } from './db.ts';
import { sqlState } from './db.ts';

/**
 * Calls one of the vault's PL/pgSQL functions (`functions/*.sql`) with named
 * arguments — `tessera_create_token(p_merchant_id => $1, …)` — so each value
 * is matched to its parameter by name, not by its place in a long list. The
 * answer is the one column `result`.
 */
export async function callFunction<Result>(q: Queryable, name: `tessera_${string}`, args: Record<string, unknown>): Promise<QueryResult<{ result: Result }>> {
  const names = Object.keys(args);
  for (const argument of [name, ...names]) {
    if (!/^[a-z][a-z0-9_]*$/.test(argument)) throw new TypeError(`not a function or parameter name: ${argument}`);
  }
  const list = names.map((argument, i) => `p_${argument} => $${i + 1}`).join(', ');
  return q.query<{ result: Result }>(`select ${name}(${list}) as result`, Object.values(args));
}

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
} as const;

export type Refusal = (typeof REFUSALS)[keyof typeof REFUSALS];

/** The refusal a vault function raised, with its detail (e.g. seconds left), or undefined for any other error. */
export function refusalOf(error: unknown): { refusal: Refusal; detail: string | undefined } | undefined {
  const state = sqlState(error);
  if (state === undefined || !Object.hasOwn(REFUSALS, state)) return undefined;
  const detail = (error as { detail?: unknown }).detail;
  return { refusal: REFUSALS[state as keyof typeof REFUSALS], detail: typeof detail === 'string' ? detail : undefined };
}
