import { createHash } from 'node:crypto';
import { VaultError } from '../errors.ts';
import { apiCodeOf, freeText } from '../lib/free-text.ts';
import { randomBase62 } from '../lib/ids.ts';
import type { Db, Queryable } from '../storage/db.ts';

/** A response exactly as first sent, replayed byte for byte. */
export interface StoredResponse {
  status: number;
  body: string;
}

/** A key this request has claimed; the response is recorded against it in the work's own transaction. */
export interface IdempotencyClaim {
  scope: string;
  key: string;
  /**
   * 128 random bits drawn when the key is first used and kept while its
   * record lives: the acquirer reference of the payment this key makes, so
   * a retry after an acquirer error reaches the same authorization.
   */
  reference: string;
  /** Set when the response carries a key: what the stored body becomes (see `ResponseSeal`). */
  sealBody?: ((body: string) => string) | undefined;
  /** Set when the key is not claimed yet: the statement that does the work claims it (see `runInStatement`). */
  inStatement?: StatementClaim | undefined;
}

/**
 * A key the work's one statement claims (`tessera_create_token`'s
 * `p_idempotency_*` arguments), replaying a stored response instead of
 * doing the work, or refusing as a claim would (422 mismatch, 409 in flight).
 */
export interface StatementClaim {
  requestHash: Buffer;
  /** The claiming process (`ProcessLiveness`), as a claim names it. */
  claimedBy: string | null;
  keepSeconds: number;
  abandonedSeconds: number;
  /**
   * For work that failed before its statement ran: what a claim made first
   * would have answered instead — the key's stored response, or 422/409
   * thrown — or undefined when the key is free (the failure is the answer).
   */
  stored(): Promise<StoredResponse | undefined>;
}

/**
 * Seals a stored response that carries a secret (a new merchant's secret
 * key), so the idempotency record never holds it in the clear. `context`
 * names the record, so a sealed body copied to another key fails to open.
 */
export interface ResponseSeal {
  seal(body: string, context: string): string;
  open(sealed: string, context: string): string;
}

export interface RunOptions {
  seal?: ResponseSeal | undefined;
}

/**
 * Thrown by an operation that failed after committing part of its work (a
 * bulk update whose items each commit on their own). Its claim is kept, not
 * released, so a retry with the same key and body finishes the work instead
 * of doing the committed part again; the request answers with `error`.
 */
export class PartlyCommitted extends Error {
  constructor(readonly error: unknown) {
    super('the operation failed after committing part of its work', { cause: error });
    this.name = 'PartlyCommitted';
  }
}

/** Records the response of a claimed request, inside the transaction that did the work. */
export async function recordResponse(tx: Queryable, claim: IdempotencyClaim | undefined, response: StoredResponse): Promise<void> {
  if (claim === undefined) return;
  await tx.query('update idempotency_keys set response_status = $3, response_body = $4 where scope = $1 and key = $2', [
    claim.scope,
    claim.key,
    response.status,
    claim.sealBody === undefined ? response.body : claim.sealBody(response.body),
  ]);
}

const RETENTION_SECONDS = 24 * 60 * 60;
const RETENTION = `${RETENTION_SECONDS} seconds`;
/** A claim older than this with no response is treated as abandoned (its process died) and can be taken over. */
const ABANDONED_AFTER_SECONDS = 60;
const ABANDONED_AFTER = `${ABANDONED_AFTER_SECONDS} seconds`;
/** Kept in the clear in `idempotency_keys`, so refused, like any free text, when it holds a card number. */
const IdempotencyKey = freeText({ max: 255, pattern: /^[\x21-\x7e]+$/ });

/** How often a release or park that failed (storage down) is tried again. */
const SETTLE_RETRY_MS = 500;

/**
 * `Idempotency-Key` handling. A key is claimed in its own short transaction,
 * so a concurrent request with the same key sees it at once (409); the
 * response is recorded in the same transaction as the work; a request that
 * fails releases its claim, so nothing of it is kept.
 *
 * A claim names the vault process holding it (`ProcessLiveness`): a retry
 * takes over, at once, a claim whose process has died, and any claim after
 * `ABANDONED_AFTER`. A release or park the storage refused (it was down) is
 * tried again in the background until it goes through, so a retry after an
 * outage is not kept waiting either. Each claim has a token of its own, and
 * a release or park touches only the claim it was made for.
 */
export class IdempotencyStore {
  readonly #db: Db;
  readonly #processId: string | null;
  /** Releases and parks that failed, by claim token, tried again every `SETTLE_RETRY_MS`. */
  readonly #unsettled = new Map<string, () => Promise<void>>();
  /** Keys this process is working on under `runInStatement`, which has no claim in storage until its statement. */
  readonly #running = new Set<string>();
  #retrying = false;

  /** `processId`: this process's `ProcessLiveness` id; without one, claims are only taken over after `ABANDONED_AFTER`. */
  constructor(db: Db, processId?: string) {
    this.#db = db;
    this.#processId = processId ?? null;
  }

  /**
   * Runs `operation` at most once per (scope, key, request). Without a key it
   * simply runs. `operation` must record its response against the claim in
   * the transaction that does the work (`recordResponse`). `request` should
   * name the endpoint as well as the body (`idempotentRequest`), since one
   * scope spans several endpoints.
   */
  async run(
    scope: string,
    key: string | undefined,
    request: unknown,
    operation: (claim: IdempotencyClaim | undefined) => Promise<StoredResponse>,
    options: RunOptions = {},
  ): Promise<StoredResponse & { replayed: boolean }> {
    if (key === undefined) return { ...(await operation(undefined)), replayed: false };
    checkKey(key);
    if (this.#running.has(runningName(scope, key))) throw inFlight();
    const requestHash = hashRequest(request);
    const token = randomBase62(16);
    const claimed = await this.#claim(scope, key, requestHash, token);
    const { seal } = options;
    const context = `${scope}/${key}`;
    if ('status' in claimed) {
      return { status: claimed.status, body: seal === undefined ? claimed.body : seal.open(claimed.body, context), replayed: true };
    }
    try {
      const sealBody = seal === undefined ? undefined : (body: string) => seal.seal(body, context);
      const response = await operation({ scope, key, reference: claimed.reference, sealBody });
      return { ...response, replayed: false };
    } catch (error) {
      // After an acquirer error the outcome is unknown, and after a partly committed
      // bulk update part of it is done: the record (and its reference) stays for the retry.
      const keep = error instanceof PartlyCommitted || (error instanceof VaultError && error.code === 'acquirer_error');
      const settle = () => (keep ? this.#park(scope, key, token) : this.#release(scope, key, token));
      await settle().catch(() => this.#settleLater(token, settle));
      throw error instanceof PartlyCommitted ? error.error : error;
    }
  }

  /**
   * `run` for work done in one statement that claims the key itself
   * (`IdempotencyClaim.inStatement`): one round trip fewer than a claim of
   * its own. Until that statement, this process keeps the key to itself
   * (a second request with it gets 409, as it would from a claim); the
   * statement refuses a key another process is working on. `operation`
   * answers `replayed` when its statement found a stored response.
   */
  async runInStatement(
    scope: string,
    key: string | undefined,
    request: unknown,
    operation: (claim: IdempotencyClaim | undefined) => Promise<StoredResponse & { replayed?: boolean }>,
  ): Promise<StoredResponse & { replayed: boolean }> {
    if (key === undefined) return { ...(await operation(undefined)), replayed: false };
    checkKey(key);
    const name = runningName(scope, key);
    if (this.#running.has(name)) throw inFlight();
    this.#running.add(name);
    try {
      const requestHash = hashRequest(request);
      const response = await operation({
        scope,
        key,
        reference: randomBase62(16),
        inStatement: {
          requestHash,
          claimedBy: this.#processId,
          keepSeconds: RETENTION_SECONDS,
          abandonedSeconds: ABANDONED_AFTER_SECONDS,
          stored: () => this.#stored(scope, key, requestHash),
        },
      });
      return { status: response.status, body: response.body, replayed: response.replayed ?? false };
    } finally {
      this.#running.delete(name);
    }
  }

  /** The answer a claim of (scope, key) would get now, short of taking it: see `StatementClaim.stored`. */
  async #stored(scope: string, key: string, requestHash: Buffer): Promise<StoredResponse | undefined> {
    const { rows } = await this.#db.query<{ request_hash: Uint8Array; response_status: number | null; response_body: string | null; abandoned: boolean }>(
      `select request_hash, response_status, response_body,
              locked_at < now() - interval '${ABANDONED_AFTER}'
                or exists (select 1 from vault_processes p where p.id = k.claimed_by and p.alive_until < now()) as abandoned
         from idempotency_keys k
        where scope = $1 and key = $2 and expires_at > now()`,
      [scope, key],
    );
    const existing = rows[0];
    if (existing === undefined) return undefined;
    if (!requestHash.equals(Buffer.from(existing.request_hash))) throw new VaultError('idempotency_mismatch');
    if (existing.response_status !== null && existing.response_body !== null) return { status: existing.response_status, body: existing.response_body };
    if (existing.abandoned) return undefined;
    throw inFlight();
  }

  /** Removes records past their 24 hours. */
  async purgeExpired(): Promise<number> {
    return (await this.#db.query('delete from idempotency_keys where expires_at <= now()')).rowCount;
  }

  async #claim(scope: string, key: string, requestHash: Buffer, token: string): Promise<StoredResponse | { reference: string }> {
    const claimed = await this.#db.query<{ reference: string }>(
      `insert into idempotency_keys (scope, key, request_hash, expires_at, reference, claimed_by, claim_token)
       values ($1, $2, $3, now() + interval '${RETENTION}', $4, $5, $6)
       on conflict (scope, key) do update
         set request_hash = excluded.request_hash, response_status = null, response_body = null,
             locked_at = now(), expires_at = excluded.expires_at, claimed_by = excluded.claimed_by, claim_token = excluded.claim_token,
             reference = case when idempotency_keys.expires_at <= now() then excluded.reference else idempotency_keys.reference end
         where idempotency_keys.expires_at <= now()
            or (idempotency_keys.response_status is null
                and idempotency_keys.request_hash = excluded.request_hash
                and (idempotency_keys.locked_at < now() - interval '${ABANDONED_AFTER}'
                     or exists (select 1 from vault_processes p where p.id = idempotency_keys.claimed_by and p.alive_until < now())))
       returning reference`,
      [scope, key, requestHash, randomBase62(16), this.#processId, token],
    );
    if (claimed.rows[0] !== undefined) return claimed.rows[0];

    const { rows } = await this.#db.query<{ request_hash: Uint8Array; response_status: number | null; response_body: string | null }>(
      'select request_hash, response_status, response_body from idempotency_keys where scope = $1 and key = $2',
      [scope, key],
    );
    const existing = rows[0];
    // Released between our insert and this read: the caller may simply retry.
    if (existing === undefined) throw inFlight();
    if (!requestHash.equals(Buffer.from(existing.request_hash))) throw new VaultError('idempotency_mismatch');
    if (existing.response_status === null || existing.response_body === null) throw inFlight();
    return { status: existing.response_status, body: existing.response_body };
  }

  /** Keeps the record for a retry, which may take it over at once (same request only). */
  async #park(scope: string, key: string, token: string): Promise<void> {
    await this.#db.query(
      `update idempotency_keys set locked_at = '-infinity' where scope = $1 and key = $2 and claim_token = $3 and response_status is null`,
      [scope, key, token],
    );
  }

  async #release(scope: string, key: string, token: string): Promise<void> {
    await this.#db.query('delete from idempotency_keys where scope = $1 and key = $2 and claim_token = $3 and response_status is null', [scope, key, token]);
  }

  #settleLater(token: string, settle: () => Promise<void>): void {
    this.#unsettled.set(token, settle);
    if (this.#retrying) return;
    this.#retrying = true;
    void (async () => {
      while (this.#unsettled.size > 0) {
        // Unreferenced: a process on its way out does not stay for these.
        await new Promise((resolve) => setTimeout(resolve, SETTLE_RETRY_MS).unref());
        for (const [pending, retry] of [...this.#unsettled]) {
          try {
            await retry();
            this.#unsettled.delete(pending);
          } catch {
            break;
          }
        }
      }
      this.#retrying = false;
    })();
  }
}

function checkKey(key: string): void {
  const checked = IdempotencyKey.safeParse(key);
  if (checked.success) return;
  const code = apiCodeOf(checked.error.issues[0]!);
  if (code !== undefined) throw new VaultError(code, { param: 'Idempotency-Key' });
  throw new VaultError('parameter_invalid', { message: 'The Idempotency-Key header must be 1–255 printable ASCII characters.', param: 'Idempotency-Key' });
}

const inFlight = () => new VaultError('idempotency_in_flight', { retryAfterSeconds: 1 });

/** A key of a scope, as `#running` holds it (a NUL never occurs in either). */
const runningName = (scope: string, key: string) => `${scope}\u0000${key}`;

/** A stable hash of the request: same parameters in any key order hash the same. */
function hashRequest(request: unknown): Buffer {
  return createHash('sha256').update(canonicalJson(request)).digest();
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
