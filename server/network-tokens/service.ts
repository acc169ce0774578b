import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AuditEntry, AuditLog, AuditSource } from '../audit/audit.ts';
import { TOKEN_RECORD, tokenRecordOf } from '../cards/records.ts';
import { READABLE } from '../cards/liveness.ts';
import { VaultError } from '../errors.ts';
import { DEFAULT_MAX_ATTEMPTS, enqueueJob, JobClaimLost } from '../jobs/index.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import type { CardSealer, SealedCard } from '../keys/card-keys.ts';
import { Coalescer } from '../lib/coalesce.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant, MerchantDirectory } from '../merchants/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { callFunction, selectFunction } from '../storage/functions.ts';
import type { LifecycleChange, SandboxTokenService } from './sandbox.ts';
import { NETWORK_TOKEN_COLUMNS, networkTokenBody, type NetworkTokenRecord } from './serialize.ts';
import { LifecycleRefused, networkOf, type Network, type TokenService, type TokenState } from './token-service.ts';
import type { NetworkTokenInput } from './schema.ts';

export const PROVISION_JOB = 'network_token.provision';
/** Deletes, at the network, a network token the vault no longer wants (its vault token was deleted). */
export const NETWORK_DELETE_JOB = 'network_token.delete';

/**
 * At most this many network tokens settle in one statement. Settlements
 * that arrive while one runs (or in the gap after it) wait for the next,
 * which takes them all (a group commit); capped so that one statement holds
 * PGlite's one thread for milliseconds, not the time of dozens of
 * tokenizations waiting behind it.
 */
const SETTLE_GROUP = 32;
/**
 * Between two settlements, at least this long: settlements arrive one by one
 * (each after its network's latency), and a statement for each would cost
 * PGlite's one thread most of what a tokenization costs; gathered for a few
 * milliseconds they settle a dozen at a time, and tokenizations get the
 * database in between.
 */
const SETTLE_GAP_MS = 20;
/**
 * Fewer settlements than this waiting (all of them background ones, jobs'
 * or in memory — a sync request's does not wait): wait longer, up to
 * SETTLE_MAX_GAP_MS. At a low rate the
 * network's answers trickle in one at a time, and a statement every 20 ms
 * would settle one or two, each paying the statement's fixed cost.
 */
const SETTLE_MIN_GROUP = 8;
const SETTLE_MAX_GAP_MS = 250;
/** At most this many network tokens read in one statement for their provisioning. */
const ROW_READ_GROUP = 64;

/** How long `mode: "sync"` waits for the token service (api.md), and a background provisioning in memory. */
const SYNC_TIMEOUT_MS = 10_000;
/**
 * Background network tokens provisioned in memory start in groups, as a
 * claim's jobs did (`claimGapMs` and `claimGroup` in job.ts): at most one
 * group every BACKGROUND_GAP_MS, and a group of fewer than BACKGROUND_GROUP
 * only once its first has waited BACKGROUND_MAX_WAIT_MS. Their row read, the
 * sandbox networks' statement and their settlement then go a group a
 * statement; at 350 tokenizations a second a group holds ~18, not 8.
 */
const BACKGROUND_GAP_MS = 50;
const BACKGROUND_GROUP = 8;
const BACKGROUND_MAX_WAIT_MS = 250;
/** A background provisioning that failed in memory is handed to a job that runs this much later (and retries with backoff). */
const BACKGROUND_RETRY_MS = 1_000;
/** At most this many network tokens given to jobs by one sweep (`adopt`). */
const ADOPT_BATCH = 500;
/**
 * The end of a statement whose CTE `taken` cleared `provisioning_since` on the
 * network tokens it returns: a provisioning job for each, `$2` ms from now.
 * Those rows no longer show as in memory, so no one gives them a second job.
 */
const JOBS_FOR_TAKEN = `select count(tessera_enqueue_job('${PROVISION_JOB}', id, jsonb_build_object('network_token', id), $2, ${DEFAULT_MAX_ATTEMPTS}))::int as n
  from taken`;

export interface NetworkTokenDeps {
  db: Db;
  log: Logger;
  cards: CardSealer;
  merchants: MerchantDirectory;
  audit: AuditLog;
  /** One token service per network: the sandbox's, or a real network's connector. */
  services: Record<Network, TokenService>;
  /** The sandbox's issuer-side controls (lifecycle), when the services are the sandbox's. */
  sandbox?: Record<Network, SandboxTokenService> | undefined;
  /** Runs in the transaction that settles a token batch's network token, after the batch row was locked. */
  onBatchSettled?: ((tx: Queryable, batchId: string) => Promise<unknown>) | undefined;
  /**
   * Awaited before each of provisioning's statements (row reads, settlements):
   * until this process's API requests in flight are answered, at most
   * `RequestsInFlight.whenIdle`'s default wait (so the backlog stays bounded):
   * PGlite runs one statement at a time, and a tokenization arriving while a
   * provisioning statement runs waits for all of it; on PostgreSQL a group's
   * work in the cluster and here takes the cores that tokenization needs.
   */
  yieldToRequests?: (() => Promise<void>) | undefined;
  /**
   * Background network tokens per process (TESSERA_NETWORK_TOKEN_CONCURRENCY and _MAX_WAITING): at most `concurrency`
   * at the network at once, so a slow network, or a burst, is not asked for thousands at once; the others wait their
   * turn in memory, at most `maxWaiting` of them (ids only), and beyond that a new one goes to a job at once.
   */
  background: { concurrency: number; maxWaiting: number };
}

/** Who asks, and the Idempotency-Key claim the answer is recorded against. */
export interface NetworkTokenContext {
  actor: string;
  source: AuditSource;
  claim: IdempotencyClaim | undefined;
}

/** The card a payment goes on when its token has an active network token: the DPAN and a cryptogram for this one authorization. */
export interface NetworkCredential {
  number: string;
  exp_month: number;
  exp_year: number;
  cryptogram: string;
  eci: string;
}

interface ProvisionRow extends NetworkTokenRecord {
  account_id: string | null;
  email: string | null;
  batch_id: string | null;
  actor: string;
  client_ip: string | null;
  request_id: string | null;
  settled_at: Date | null;
  card_sealed: Uint8Array | null;
  card_key_sealed: Uint8Array | null;
  card_data_key_version: number;
  exp_month: number;
  exp_year: number;
  readable: boolean;
}

/** What a provisioning run ended with: settled (its event written), or still pending at the network. */
export type Provisioned = { record: NetworkTokenRecord; settled: true } | { record: NetworkTokenRecord; settled: false; retryAfterMs: number };

/** Work done in the transaction that settles a network token (its event's): a stored answer. */
type Within = (tx: Queryable, record: NetworkTokenRecord) => Promise<void>;

/**
 * A job's `completeIn`: the settlement completes the job, by its claim, in
 * its own transaction; a claim found gone there rejects with `JobClaimLost`
 * and leaves the network token to the job's next claim.
 */
export type CompleteIn = <T>(settle: (job: { id: string; claim: string }) => Promise<T>) => Promise<T>;

/** The network's final answer for a network token, as the vault records it. */
type Answer = TokenState | { status: 'ineligible' | 'declined' | 'deleted' };

interface Settlement {
  row: ProvisionRow;
  /** Undefined: settled before (a repeat run), only the job's completion and `within` are left. */
  answer: Answer | undefined;
  sealed: SealedCard | undefined;
  job: { id: string; claim: string } | undefined;
  within: Within | undefined;
  resolve(outcome: Provisioned): void;
  reject(error: unknown): void;
}

/**
 * Network tokens: the vault asks a card network's token service for a
 * network token for a card it holds, keeps the token number (DPAN) sealed like
 * a card number, uses it with a fresh cryptogram for payments, and follows
 * the issuer's changes. Every change is a `network_token.*` event written in
 * the transaction of the change.
 */
export class NetworkTokens {
  readonly #deps: NetworkTokenDeps;
  /** Background network tokens waiting for their group to start (`provisionInBackground`). */
  #background: string[] = [];
  #backgroundTimer: NodeJS.Timeout | undefined;
  /** When the armed timer fires, and when the last group started and the first of the waiting ones came (performance.now()). */
  #backgroundDue = 0;
  #backgroundStarted = -Infinity;
  #backgroundFirst = 0;
  readonly #backgroundRuns = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  #settlements: Settlement[] = [];
  #settling = false;
  readonly #rowReads: Coalescer<string, ProvisionRow | undefined>;
  readonly #concurrency: number;
  readonly #maxWaiting: number;

  constructor(deps: NetworkTokenDeps) {
    this.#deps = deps;
    this.#concurrency = deps.background.concurrency;
    this.#maxWaiting = deps.background.maxWaiting;
    this.#rowReads = new Coalescer((ids: readonly string[]) => this.#readRows(ids), { max: ROW_READ_GROUP, turn: true, before: deps.yieldToRequests });
  }

  /**
   * `POST /v1/tokens/{token}/network-token`. Async: a pending network token
   * and its job are written, answered 202. Sync: asked now (≤ 10 s), 201
   * with the outcome; a token the network settles later (delayed) is
   * answered 202 pending and finished by a job, like async.
   */
  async request(merchant: Merchant, token: string, input: NetworkTokenInput, ctx: NetworkTokenContext): Promise<StoredResponse> {
    const { db } = this.#deps;
    const { rows } = await db.query<{ brand: string }>(`select brand from tokens where merchant_id = $1 and token = $2 and ${READABLE}`, [
      merchant.id,
      token,
    ]);
    const brand = rows[0]?.brand;
    if (brand === undefined) throw new VaultError('token_not_found', { param: 'token' });
    const id = newId('ntok');
    const network = networkOf(brand);
    const supported = network !== undefined;
    const insert = async (tx: Queryable) => {
      const inserted = await tx.query<NetworkTokenRecord>(
        `insert into network_tokens (id, merchant_id, token, network, status, requested_by, correlation_id, account_id, email, actor, client_ip, request_id,
                                     settled_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         returning ${NETWORK_TOKEN_COLUMNS}`,
        [
          id,
          merchant.id,
          token,
          network ?? brand,
          supported ? 'pending' : 'ineligible',
          input.mode,
          input.correlation_id ?? null,
          input.account_id ?? null,
          input.email ?? null,
          ctx.actor,
          ctx.source.clientIp,
          ctx.source.requestId,
          supported ? null : new Date(),
        ],
      );
      return inserted.rows[0]!;
    };

    if (!supported) {
      // No network to ask (a brand without a token service): ineligible at once, and said so in an event.
      return db.transaction(async (tx) => {
        const record = await insert(tx);
        const response = { status: 201, body: JSON.stringify(networkTokenBody(record)) };
        await recordResponse(tx, ctx.claim, response);
        await this.#event(tx, 'network_token.created', record, ctx);
        return response;
      });
    }
    if (input.mode === 'async') {
      return db.transaction(async (tx) => {
        const record = await insert(tx);
        await enqueueJob(tx, { kind: PROVISION_JOB, key: id, payload: { network_token: id } });
        const response = { status: 202, body: JSON.stringify(networkTokenBody(record)) };
        await recordResponse(tx, ctx.claim, response);
        await this.#requested(tx, record, ctx);
        return response;
      });
    }

    await db.transaction(async (tx) => {
      await this.#requested(tx, await insert(tx), ctx);
    });
    // Answered once settled, in the transaction of its event. When the network answers pending, or does not answer
    // (an outage, no answer within 10 s), the request is answered 202 with the pending object and a job takes over,
    // as an async request would have been: the merchant waits for network_token.created either way.
    const outcome = await this.provision(id, {
      signal: AbortSignal.timeout(SYNC_TIMEOUT_MS),
      within: async (tx, record) => recordResponse(tx, ctx.claim, { status: 201, body: JSON.stringify(networkTokenBody(record)) }),
    }).catch((error: unknown) => {
      this.#deps.log.warn({ network_token: id, err: error }, 'the token service did not answer a sync request: answered 202 pending, a job takes over');
      return undefined;
    });
    if (outcome?.settled === true) return { status: 201, body: JSON.stringify(networkTokenBody(outcome.record)) };
    return db.transaction(async (tx) => {
      await enqueueJob(tx, { kind: PROVISION_JOB, key: id, payload: { network_token: id }, delayMs: outcome?.retryAfterMs ?? 0 });
      const record = outcome?.record ?? (await this.get(merchant.id, id, tx));
      const response = { status: 202, body: JSON.stringify(networkTokenBody(record)) };
      await recordResponse(tx, ctx.claim, response);
      return response;
    });
  }

  /**
   * A merchant with `network_tokens` on got a new reusable token, and its
   * pending background network token (`id`) went in with it, without a job:
   * this process asks the network now, in memory, as a sync request does.
   * A network that holds the token pending (delayed), or an attempt that
   * fails, hands it to a `network_token.provision` job (retries, backoff, the
   * last attempt settling it declined). Should this process die or stall
   * first, the row's `provisioning_since` gets it a job from the job sweep a
   * lease later (`adopt`), on any vault process. Nothing the network is asked
   * twice can give a second token: the request id is the network token's id.
   * Saves a job row, its claim and its completion a token, the larger part
   * of what the job cost PGlite's thread (docs/decisions.md, "Background
   * network tokens without a job").
   */
  provisionInBackground(id: string): void {
    // Closing: left to the sweep, which finds it a lease from now.
    if (this.#closing.signal.aborted) return;
    if (this.#background.length >= this.#maxWaiting) {
      void this.#handOff([id], 0);
      return;
    }
    if (this.#background.length === 0) this.#backgroundFirst = performance.now();
    this.#background.push(id);
    this.#armBackground();
  }

  /** Sets the timer that starts the next group: at most every BACKGROUND_GAP_MS, a small group later; none while all slots are busy. */
  #armBackground(): void {
    if (this.#background.length === 0 || this.#backgroundRuns.size >= this.#concurrency || this.#closing.signal.aborted) return;
    const due =
      this.#background.length >= BACKGROUND_GROUP ? this.#backgroundStarted + BACKGROUND_GAP_MS : this.#backgroundFirst + BACKGROUND_MAX_WAIT_MS;
    if (this.#backgroundTimer !== undefined && this.#backgroundDue <= due) return;
    clearTimeout(this.#backgroundTimer);
    this.#backgroundDue = due;
    this.#backgroundTimer = setTimeout(() => this.#startBackground(), Math.max(0, due - performance.now()));
  }

  #startBackground(): void {
    clearTimeout(this.#backgroundTimer);
    this.#backgroundTimer = undefined;
    this.#backgroundStarted = performance.now();
    const ids = this.#background.splice(0, this.#concurrency - this.#backgroundRuns.size);
    // Those left waited already: a group of them goes within the gap.
    this.#backgroundFirst = this.#backgroundStarted - BACKGROUND_MAX_WAIT_MS + BACKGROUND_GAP_MS;
    for (const id of ids) {
      const run: Promise<void> = this.#provisionInMemory(id).finally(() => {
        this.#backgroundRuns.delete(run);
        this.#armBackground();
      });
      this.#backgroundRuns.add(run);
    }
  }

  async #provisionInMemory(id: string): Promise<void> {
    let retryAfterMs = BACKGROUND_RETRY_MS;
    try {
      const outcome = await this.provision(id, { signal: AbortSignal.any([AbortSignal.timeout(SYNC_TIMEOUT_MS), this.#closing.signal]) });
      if (outcome.settled) return;
      retryAfterMs = outcome.retryAfterMs + 50;
    } catch (error) {
      // Aborted by close(): not a failure, the job runs it in the next process.
      if (!this.#closing.signal.aborted) this.#deps.log.warn({ network_token: id, err: error }, 'background network token provisioning failed in memory: a job takes over');
    }
    await this.#handOff([id], retryAfterMs);
  }

  /**
   * Network tokens provisioned in memory go to jobs, in the statement that
   * clears their `provisioning_since`; one a sweep took first, or settled,
   * is left alone.
   */
  async #handOff(ids: readonly string[], delayMs: number): Promise<void> {
    try {
      await this.#deps.db.query(
        `with taken as (
           update network_tokens set provisioning_since = null
            where id = any($1) and provisioning_since is not null and settled_at is null
           returning id)
         ${JOBS_FOR_TAKEN}`,
        [ids, delayMs],
      );
    } catch (error) {
      this.#deps.log.warn({ network_tokens: ids.length, err: error }, 'background network tokens could not be given to jobs: the job sweep will');
    }
  }

  /**
   * The job sweep's part (`JobHandler.adopt`): background network tokens
   * still pending `staleMs` after a process began them in memory get their
   * job, in the statement that clears `provisioning_since`.
   */
  async adopt(q: Queryable, staleMs: number): Promise<number> {
    const { rows } = await q.query<{ n: number }>(
      `with stale as (
         select id from network_tokens
          where provisioning_since is not null and settled_at is null and provisioning_since < now() - $1 * interval '1 millisecond'
          order by provisioning_since
          limit ${ADOPT_BATCH}
          for update skip locked),
       taken as (
         update network_tokens n set provisioning_since = null from stale where n.id = stale.id returning n.id)
       ${JOBS_FOR_TAKEN}`,
      [staleMs, 0],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Stops provisioning in memory: what waits for its group and what is in
   * flight (aborted) is given to jobs, for the next process to run.
   */
  async close(): Promise<void> {
    this.#closing.abort(new Error('the vault is closing'));
    clearTimeout(this.#backgroundTimer);
    const waiting = this.#background.splice(0);
    await Promise.allSettled([...this.#backgroundRuns]);
    if (waiting.length > 0) await this.#handOff(waiting, 0);
  }

  /**
   * Asks the network for this network token (again: the request id is the
   * network token's id, so a repeat gets the same token) and records the
   * answer: metadata, the DPAN sealed, `network_token.created`, and `within`
   * (or the job's completion, `complete`), all in one transaction that only
   * the first settlement commits.
   */
  async provision(
    id: string,
    options: { signal?: AbortSignal | undefined; within?: Within | undefined; complete?: CompleteIn | undefined } = {},
  ): Promise<Provisioned> {
    const { db, cards, merchants, services } = this.#deps;
    const row = await this.#readRow(id);
    if (row === undefined) throw new Error(`network token ${id} is gone`);
    if (row.settled_at !== null || !row.readable || row.card_sealed === null) {
      return this.#settleWith(row, !row.readable || row.card_sealed === null ? { status: 'deleted' } : undefined, undefined, options);
    }
    const merchant = await merchants.byId(row.merchant_id);
    if (merchant === undefined) throw new Error(`network token ${id}: its merchant is gone`);
    const card = await cards.open(merchant, { token: row.token }, {
      card_sealed: row.card_sealed,
      card_key_sealed: row.card_key_sealed,
      data_key_version: row.card_data_key_version,
    });
    const answer = await services[row.network as Network].provision(
      {
        requestId: row.id,
        requestor: merchant.id,
        card: { number: card.number, exp_month: row.exp_month, exp_year: row.exp_year },
        accountId: row.account_id ?? undefined,
        email: row.email ?? undefined,
      },
      options.signal,
    );
    if (answer.status === 'pending') {
      const { rows } = await db.query<NetworkTokenRecord>(
        `update network_tokens set token_id = $2, token_last4 = $3, token_exp_month = $4, token_exp_year = $5, pan_last4 = $6, par = $7,
                card_art_id = $8, issuer_name = $9, updated_at = now()
          where id = $1 and settled_at is null
          returning ${NETWORK_TOKEN_COLUMNS}`,
        [id, answer.tokenId, answer.dpan.slice(-4), answer.token_exp_month, answer.token_exp_year, answer.pan_last4, answer.par, answer.card_art_id, answer.issuer_name],
      );
      return { record: rows[0] ?? row, settled: false, retryAfterMs: answer.retryAfterMs ?? 1000 };
    }
    const sealed = 'dpan' in answer ? cards.seal(merchant, { token: row.id }, { number: answer.dpan }) : undefined;
    return this.#settleWith(row, answer, sealed, options);
  }

  /**
   * A provisioning's last attempt failed (the token service never answered,
   * or still holds the token pending): the network token is settled
   * `declined`, with its event and the job's completion, so it is not left
   * pending for good and its batch can complete. A token id the network gave
   * (pending) is deleted there.
   */
  async giveUp(id: string, complete: CompleteIn): Promise<Provisioned> {
    const row = await this.#readRow(id);
    if (row === undefined) throw new Error(`network token ${id} is gone`);
    this.#deps.log.warn({ network_token: id }, 'network token provisioning failed its last attempt: settled declined');
    return this.#settleWith(row, { status: 'declined' }, undefined, { complete });
  }

  #settleWith(
    row: ProvisionRow,
    answer: Answer | undefined,
    sealed: SealedCard | undefined,
    options: { within?: Within | undefined; complete?: CompleteIn | undefined },
  ): Promise<Provisioned> {
    const settle = (job: { id: string; claim: string } | undefined) =>
      new Promise<Provisioned>((resolve, reject) => {
        this.#settlements.push({ row, answer, sealed, job, within: options.within, resolve, reject });
        if (this.#settling) return;
        this.#settling = true;
        setImmediate(() => void this.#settleQueued());
      });
    return options.complete === undefined ? settle(undefined) : options.complete((job) => settle(job));
  }

  /** Settles what is queued, a group per transaction, one transaction at a time; what arrives meanwhile goes in the next. */
  async #settleQueued(): Promise<void> {
    try {
      while (this.#settlements.length > 0) {
        await this.#deps.yieldToRequests?.();
        // One settlement of a network token per group: a second (a sync request and its job at once) waits for the next.
        const group: Settlement[] = [];
        const ids = new Set<string>();
        const rest: Settlement[] = [];
        for (const settlement of this.#settlements) {
          if (group.length < SETTLE_GROUP && !ids.has(settlement.row.id)) {
            group.push(settlement);
            ids.add(settlement.row.id);
          } else rest.push(settlement);
        }
        this.#settlements = rest;
        const started = performance.now();
        try {
          const outcomes = await this.#settleGroup(group);
          group.forEach((settlement, i) => {
            const outcome = outcomes[i]!;
            if (outcome instanceof Error) settlement.reject(outcome);
            else settlement.resolve(outcome);
          });
        } catch (error) {
          for (const settlement of group) settlement.reject(error);
        }
        await this.#settleGap(started);
      }
    } finally {
      this.#settling = false;
    }
  }

  /** After a group: SETTLE_GAP_MS once a group's worth (or a sync request's) waits, else up to SETTLE_MAX_GAP_MS, looked at every SETTLE_GAP_MS. */
  async #settleGap(started: number): Promise<void> {
    if (this.#settlements.length >= SETTLE_GROUP) return;
    await sleep(SETTLE_GAP_MS);
    while (
      this.#settlements.length > 0 &&
      this.#settlements.length < SETTLE_MIN_GROUP &&
      // A sync request's settlement (it records the answer, `within`) does not wait; a background one's (a job's, or in memory) may.
      this.#settlements.every((settlement) => settlement.within === undefined) &&
      performance.now() - started < SETTLE_MAX_GAP_MS
    ) {
      await sleep(SETTLE_GAP_MS);
    }
  }

  /**
   * Writes each network's final answer once (`settled_at`), with its event
   * and its job's completion: `tessera_settle_network_tokens`, one statement
   * for the group. A sync request's stored answer, or a batch's completion,
   * joins it in a transaction.
   */
  async #settleGroup(group: readonly Settlement[]): Promise<(Provisioned | JobClaimLost)[]> {
    const { db } = this.#deps;
    const hex = (bytes: Uint8Array | undefined) => (bytes === undefined ? null : Buffer.from(bytes).toString('hex'));
    const items = group.map((s) => {
      const meta = s.answer !== undefined && 'dpan' in s.answer ? s.answer : undefined;
      return {
        id: s.row.id,
        job_id: s.job?.id ?? null,
        claim: s.job?.claim ?? null,
        event_id: newId('evt'),
        answered: s.answer !== undefined,
        status: s.answer?.status ?? null,
        token_id: meta?.tokenId ?? null,
        token_last4: meta?.dpan.slice(-4) ?? null,
        token_exp_month: meta?.token_exp_month ?? null,
        token_exp_year: meta?.token_exp_year ?? null,
        pan_last4: meta?.pan_last4 ?? null,
        par: meta?.par ?? null,
        card_art_id: meta?.card_art_id ?? null,
        issuer_name: meta?.issuer_name ?? null,
        dpan_sealed: hex(s.sealed?.card_sealed),
        dpan_key_sealed: hex(s.sealed?.card_key_sealed),
        data_key_version: s.sealed?.data_key_version ?? null,
      };
    });
    const settle = async (q: Queryable) => {
      const { rows } = await callFunction<{ id: string; done: boolean; record: NetworkTokenRecord | null }[]>(q, 'tessera_settle_network_tokens', {
        settlements: JSON.stringify(items),
      });
      return rows[0]!.result.map((answer) => ({
        ...answer,
        record: answer.record === null ? null : { ...answer.record, created_at: new Date(answer.record.created_at), updated_at: new Date(answer.record.updated_at) },
      }));
    };
    const outcomes = async (answers: Awaited<ReturnType<typeof settle>>, tx?: Queryable) => {
      const result: (Provisioned | JobClaimLost)[] = [];
      for (const [i, s] of group.entries()) {
        const answer = answers[i]!;
        if (!answer.done) {
          result.push(new JobClaimLost(s.job!.id));
          continue;
        }
        // A second settlement (a retried job, a sync request and its job) only completes and answers.
        const record = answer.record ?? (s.within === undefined || tx === undefined ? s.row : await this.get(s.row.merchant_id, s.row.id, tx));
        if (tx !== undefined) await s.within?.(tx, record);
        result.push({ record, settled: true });
      }
      return result;
    };

    const batches = [...new Set(group.flatMap((s) => (s.row.batch_id === null ? [] : [s.row.batch_id])))].sort();
    if (batches.length === 0 && group.every((s) => s.within === undefined)) return outcomes(await settle(db));
    return db.transaction(async (tx) => {
      const answers = await settle(tx);
      const result = await outcomes(answers, tx);
      // A batch's last network token completes it, its event after this one's.
      const touched = new Set(group.flatMap((s, i) => (s.row.batch_id !== null && answers[i]!.record !== null ? [s.row.batch_id] : [])));
      for (const batch of batches) if (touched.has(batch)) await this.#deps.onBatchSettled?.(tx, batch);
      return result;
    });
  }

  /**
   * The issuer changed a token (api.md, lifecycle): the sandbox's token
   * service applies it, and its notification to the vault is applied here —
   * every network token of the merchant with that token id, each with
   * `network_token.updated`; a new card number or expiry also refreshes the
   * vault token's card (an account updater) with `token.updated`.
   */
  async lifecycle(merchant: Merchant, id: string, change: LifecycleChange, ctx: NetworkTokenContext): Promise<StoredResponse> {
    const record = await this.get(merchant.id, id);
    const sandbox = this.#deps.sandbox?.[record.network as Network];
    if (record.token_id === null || sandbox === undefined) throw new VaultError('network_token_unavailable', { param: 'id' });
    const state = await sandbox.lifecycle(record.token_id, change).catch((error: unknown) => {
      throw error instanceof LifecycleRefused ? new VaultError('network_token_unavailable', { param: 'id', cause: error }) : error;
    });
    return this.#deps.db.transaction(async (tx) => {
      const changed = await this.#applyNetworkUpdate(tx, merchant, record.network as Network, state, change.event === 'pan_update', ctx);
      const mine = changed.find((r) => r.id === id) ?? (await this.get(merchant.id, id, tx));
      const response = { status: 200, body: JSON.stringify(networkTokenBody(mine)) };
      await recordResponse(tx, ctx.claim, response);
      return response;
    });
  }

  /**
   * The vault token was deleted (in `tx`, before this): its active and
   * suspended network tokens are deleted too — here at once (their numbers
   * were erased with the card), at the network by a job enqueued in `tx` (the
   * outbox: the delete commits with its job or neither happens). Pending ones
   * are left to their provisioning job, which finds the token gone. Answers
   * their `network_token.updated` entries, for the caller to write last.
   */
  async tokenDeleted(tx: Queryable, merchantId: string, token: string, ctx: Pick<NetworkTokenContext, 'actor' | 'source'>): Promise<AuditEntry[]> {
    const { rows } = await tx.query<NetworkTokenRecord>(
      `update network_tokens set status = 'deleted', dpan_sealed = null, dpan_key_sealed = null, updated_at = now()
        where merchant_id = $1 and token = $2 and status in ('active', 'suspended')
        returning ${NETWORK_TOKEN_COLUMNS}`,
      [merchantId, token],
    );
    for (const record of rows) await enqueueJob(tx, { kind: NETWORK_DELETE_JOB, key: record.id, payload: { network_token: record.id } });
    return rows.map((record) => this.#entry('network_token.updated', record, ctx));
  }

  /**
   * Asks the network to delete a network token the vault settled as deleted
   * (or declined while the network held it pending). A token id another of
   * the merchant's network tokens still uses (Visa and Amex answer one token
   * for one card and account) is kept; a token the network holds no more is
   * nothing to do.
   */
  async deleteAtNetwork(id: string): Promise<'deleted' | 'shared' | 'gone'> {
    const { rows } = await this.#deps.db.query<{ network: Network; token_id: string | null; shared: boolean }>(
      `select n.network, n.token_id,
              exists (select 1 from network_tokens o
                       where o.merchant_id = n.merchant_id and o.network = n.network and o.token_id = n.token_id and o.id <> n.id
                         and o.status in ('pending', 'active', 'suspended')) as shared
         from network_tokens n where n.id = $1 and n.status in ('deleted', 'declined')`,
      [id],
    );
    const row = rows[0];
    if (row === undefined || row.token_id === null) return 'gone';
    if (row.shared) return 'shared';
    try {
      await this.#deps.services[row.network].lifecycle(row.token_id, { event: 'delete' });
      return 'deleted';
    } catch (error) {
      if (error instanceof LifecycleRefused) return 'gone';
      throw error;
    }
  }

  async #applyNetworkUpdate(
    tx: Queryable,
    merchant: Merchant,
    network: Network,
    state: TokenState,
    panUpdate: boolean,
    ctx: NetworkTokenContext,
  ): Promise<NetworkTokenRecord[]> {
    if (panUpdate) {
      // The vault tokens first, the order a token's delete locks them in.
      await tx.query(
        `select 1 from tokens
          where merchant_id = $1 and token in (select token from network_tokens where merchant_id = $1 and network = $2 and token_id = $3)
          order by token
          for update`,
        [merchant.id, network, state.tokenId],
      );
    }
    const { rows } = await tx.query<NetworkTokenRecord>(
      `update network_tokens set status = $4, pan_last4 = $5, token_exp_month = $6, token_exp_year = $7,
              -- a deleted token's number is of no use to anyone: it goes
              dpan_sealed = case when $4 = 'deleted' then null else dpan_sealed end,
              dpan_key_sealed = case when $4 = 'deleted' then null else dpan_key_sealed end,
              updated_at = now()
        where merchant_id = $1 and network = $2 and token_id = $3 and settled_at is not null
        returning ${NETWORK_TOKEN_COLUMNS}`,
      [merchant.id, network, state.tokenId, state.status, state.pan_last4, state.token_exp_month, state.token_exp_year],
    );
    const entries = rows.map((record) => this.#entry('network_token.updated', record, ctx));
    if (panUpdate) {
      const tokens = [...new Set(rows.map((r) => r.token))];
      // New last 4 digits: a new card number, which the network does not send. The sealed one is the old card's from now
      // on, and a payment that would fall back to it is refused (card_outdated) until the merchant gives the new card.
      const updated = await tx.query<{ token: string; record: unknown }>(
        `update tokens set last4 = $3, exp_month = $4, exp_year = $5, updated_at = now(),
                pan_outdated_at = case when last4 is distinct from $3 then coalesce(pan_outdated_at, now()) else pan_outdated_at end
          where merchant_id = $1 and token = any($2) and ${READABLE}
          returning token, ${TOKEN_RECORD}`,
        [merchant.id, tokens, state.pan_last4, state.pan_exp_month, state.pan_exp_year],
      );
      for (const row of updated.rows) {
        entries.push({
          merchantId: merchant.id,
          actor: ctx.actor,
          ...ctx.source,
          action: 'token.updated',
          outcome: 'succeeded',
          token: row.token,
          event: { type: 'token.updated', data: tokenRecordOf(row.record) },
        });
      }
    }
    await this.#deps.audit.recordMany(entries, tx);
    return rows;
  }

  async get(merchantId: string, id: string, q: Queryable = this.#deps.db): Promise<NetworkTokenRecord> {
    const { rows } = await q.query<NetworkTokenRecord>(`select ${NETWORK_TOKEN_COLUMNS} from network_tokens where merchant_id = $1 and id = $2`, [
      merchantId,
      id,
    ]);
    if (rows[0] === undefined) throw new VaultError('network_token_not_found', { param: 'id' });
    return rows[0];
  }

  /** Each token's newest network token, for token objects. */
  async newestFor(merchantId: string, tokens: readonly string[]): Promise<Map<string, NetworkTokenRecord>> {
    if (tokens.length === 0) return new Map();
    const { rows } = await this.#deps.db.query<NetworkTokenRecord>(
      `select distinct on (token) ${NETWORK_TOKEN_COLUMNS} from network_tokens
        where merchant_id = $1 and token = any($2)
        order by token, created_at desc, id desc`,
      [merchantId, tokens],
    );
    return new Map(rows.map((row) => [row.token, row]));
  }

  /**
   * The credential for a payment on `token`: its newest active network
   * token's number with a cryptogram made for this authorization, or
   * undefined (no active network token, or the network no longer holds it
   * active): the payment then goes on the card number.
   */
  async credential(merchant: Merchant, token: string): Promise<NetworkCredential | undefined> {
    const { rows } = await this.#deps.db.query<{
      network: Network;
      token_id: string;
      id: string;
      dpan_sealed: Uint8Array;
      dpan_key_sealed: Uint8Array;
      data_key_version: number;
      token_exp_month: number;
      token_exp_year: number;
    }>(
      `select id, network, token_id, dpan_sealed, dpan_key_sealed, data_key_version, token_exp_month, token_exp_year from network_tokens
        where merchant_id = $1 and token = $2 and status = 'active' and dpan_sealed is not null
        order by created_at desc, id desc
        limit 1`,
      [merchant.id, token],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const cryptogram = await this.#deps.services[row.network].cryptogram(row.token_id);
    if (cryptogram === undefined) return undefined;
    const { number } = await this.#deps.cards.open(merchant, { token: row.id }, {
      card_sealed: row.dpan_sealed,
      card_key_sealed: row.dpan_key_sealed,
      data_key_version: row.data_key_version,
    });
    return { number, exp_month: row.token_exp_month, exp_year: row.token_exp_year, ...cryptogram };
  }

  /** A network token with its vault token's card, for provisioning: read in groups (the jobs of one claim start together). */
  #readRow(id: string): Promise<ProvisionRow | undefined> {
    return this.#rowReads.call(id);
  }

  async #readRows(ids: readonly string[]): Promise<(ProvisionRow | undefined)[]> {
    const { rows } = await selectFunction<ProvisionRow>(this.#deps.db, 'tessera_network_token_provision_rows', { ids: [...new Set(ids)] });
    const found = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => found.get(id));
  }

  async #requested(tx: Queryable, record: NetworkTokenRecord, ctx: NetworkTokenContext): Promise<void> {
    await this.#deps.audit.record(
      { merchantId: record.merchant_id, actor: ctx.actor, ...ctx.source, action: 'network_token.requested', outcome: 'succeeded', token: record.token },
      tx,
    );
  }

  /** Last in its transaction: an audit entry locks its merchant's chain until commit. */
  async #event(
    tx: Queryable,
    type: 'network_token.created' | 'network_token.updated',
    record: NetworkTokenRecord,
    ctx: Pick<NetworkTokenContext, 'actor' | 'source'>,
  ): Promise<void> {
    await this.#deps.audit.record(this.#entry(type, record, ctx), tx);
  }

  #entry(type: 'network_token.created' | 'network_token.updated', record: NetworkTokenRecord, ctx: Pick<NetworkTokenContext, 'actor' | 'source'>): AuditEntry {
    return { merchantId: record.merchant_id, actor: ctx.actor, ...ctx.source, action: type, outcome: 'succeeded', token: record.token, event: { type, data: record } };
  }
}
