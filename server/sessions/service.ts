import { VaultError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import type { Db, Queryable } from '../storage/db.ts';

/** A session lives this long and allows this many token creations: the first brake on card testing. */
export const SESSION_LIFETIME_MINUTES = 30;
export const SESSION_TOKEN_LIMIT = 20;

export interface FieldsSession {
  session: string;
  expires_at: string;
}

interface SessionRow {
  merchant_id: string;
  publishable_key: string;
  tokens_created: number;
  expires_at: Date;
}

/** Sessions of the card fields: opened for an allowed parent origin, counted per token. */
export class FieldsSessions {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Opens a session; with an Idempotency-Key, its response is recorded in the
   * same transaction. `vaultOrigin`, when given, is allowed beside the
   * merchant's origins: the fields document's own check, for the vault's
   * hosted payment page.
   */
  async open(
    merchant: Merchant,
    parentOrigin: string,
    idempotent?: { claim: IdempotencyClaim; render: (session: FieldsSession) => StoredResponse },
    vaultOrigin?: string,
  ): Promise<FieldsSession> {
    if (!merchant.allowed_origins.includes(parentOrigin) && parentOrigin !== vaultOrigin) throw new VaultError('origin_not_allowed', { param: 'parent_origin' });
    const insert = async (q: Queryable): Promise<FieldsSession> => {
      const id = newId('ses');
      const { rows } = await q.query<{ expires_at: Date }>(
        `insert into sessions (id, merchant_id, publishable_key, parent_origin, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(mins => $5))
         returning expires_at`,
        [id, merchant.id, merchant.publishable_key, parentOrigin, SESSION_LIFETIME_MINUTES],
      );
      return { session: id, expires_at: rows[0]!.expires_at.toISOString() };
    };
    // The fields document opens one per page view without a key: that path stays one statement.
    if (idempotent === undefined) return insert(this.#db);
    return this.#db.transaction(async (tx) => {
      const session = await insert(tx);
      await recordResponse(tx, idempotent.claim, idempotent.render(session));
      return session;
    });
  }

  async purgeExpired(): Promise<number> {
    return (await this.#db.query(`delete from sessions where expires_at <= now() - interval '1 day'`)).rowCount;
  }
}

/**
 * Refuses a session that is unknown, another key's, over, or has made its
 * tokens, as the token write (`tessera_create_token`, which also counts the
 * token) would: for a tokenization refused before that write.
 */
export async function checkSession(q: Queryable, sessionId: string, publishableKey: string): Promise<void> {
  const { rows } = await q.query<SessionRow>('select merchant_id, publishable_key, tokens_created, expires_at from sessions where id = $1', [sessionId]);
  assertUsable(rows[0], publishableKey);
}

function assertUsable(session: SessionRow | undefined, publishableKey: string): void {
  if (session === undefined || session.publishable_key !== publishableKey || session.expires_at <= new Date()) {
    throw new VaultError('session_invalid', { param: 'session' });
  }
  if (session.tokens_created >= SESSION_TOKEN_LIMIT) throw sessionExhausted((session.expires_at.getTime() - Date.now()) / 1000);
}

/** The 21st token of a session: 429, to retry once the session is over (a new one is needed). */
export function sessionExhausted(secondsLeft: number): VaultError {
  return new VaultError('rate_limited', {
    message: `This session has created its ${SESSION_TOKEN_LIMIT} tokens; open a new session.`,
    retryAfterSeconds: Number.isFinite(secondsLeft) && secondsLeft > 0 ? secondsLeft : 1,
  });
}
