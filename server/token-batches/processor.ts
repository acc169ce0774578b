import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit.ts';
import type { Card } from '../cards/card.ts';
import type { CardServiceDeps } from '../cards/deps.ts';
import { VaultError } from '../errors.ts';
import type { Job, JobHandler } from '../jobs/index.ts';
import { cardCiphertextKey } from '../keys/card-ciphertext.ts';
import type { RequestsInFlight } from '../http/in-flight.ts';
import type { CardDecryptPool } from '../keys/card-decrypt-pool.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant, MerchantDirectory } from '../merchants/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { callFunction } from '../storage/functions.ts';
import { prepareToken, type PreparedToken, type TokenOutcome } from '../tokens/create.ts';
import type { TokenBatchRecord } from './serialize.ts';
import { completeTokenBatchIfSettled, requestBatchNetworkTokens } from './complete.ts';
import { BATCH_COLUMNS, TOKEN_BATCH_JOB } from './service.ts';

export interface TokenBatchProcessorDeps {
  db: Db;
  log: Logger;
  /** What tokenization needs (tokens/create.ts), the same as `POST /v1/tokens`. */
  cards: CardServiceDeps;
  merchants: MerchantDirectory;
  pool: CardDecryptPool;
  audit: AuditLog;
  /** This process's API requests in flight: on PGlite a chunk's transaction waits (a little) for them. */
  traffic?: RequestsInFlight;
}

/**
 * Items written per transaction (one call of tessera_write_batch_chunk),
 * sized by the time its transactions take (`ChunkSize`): about 15 ms. On
 * PGlite a transaction holds the one database connection; on PostgreSQL it
 * holds its merchant's audit chain from its first item's entry to its
 * commit. Either way a tokenization arriving meanwhile waits for the chunk.
 * PGlite's chunks were a fixed 32 items (~50 ms): once decryption stopped
 * pacing them they ran back to back, and a tokenization beside a batch
 * nearly always waited out most of one (p99 5.7 × idle, measured).
 *
 * On PGlite, while no request reaches the process, the hold doubles after
 * each chunk no request arrived during, up to `quietHoldMs`: a chunk's fixed
 * cost (its round trip, the batch's lock, its statements' start) is then
 * spread over more items — under load chunks were at 4–8 items, and a
 * replayed chunk's statement cost 1.9 ms an item at 8 items, 1.4 at 32. The
 * first request to arrive sets the hold back to 15 ms before the next
 * write, and a chunk prepared at twice that or more is written in parts. Not on
 * PostgreSQL: a chunk there holds the merchant's chain against every vault
 * process, and this one sees only its own requests.
 */
const CHUNK_ITEMS = { first: 16, min: 4, max: 64, holdMs: 15, quietHoldMs: 60 } as const;

/**
 * Chunks decrypted and sealed ahead of the one being written, so the decrypt
 * threads keep working while the database writes (and reads) and the next
 * chunk is ready when a write ends; a bound on the cards held open in memory.
 */
const CHUNKS_AHEAD = 3;

/** Pending items read per statement. */
const READ_ITEMS = 128;

/**
 * The items of the next chunk: as many as should take about the hold to
 * write, from the time the last chunks took per item — so a quick machine
 * writes large chunks and a loaded one small ones, and a single
 * tokenization never waits long behind one.
 */
class ChunkSize {
  readonly #grows: boolean;
  #items: number = CHUNK_ITEMS.first;
  #holdMs: number = CHUNK_ITEMS.holdMs;
  /** Milliseconds per item, smoothed over the last chunks. */
  #perItemMs: number | undefined;

  /** `grows`: the hold may grow while no request arrives (PGlite, with the process's requests counted). */
  constructor(grows: boolean) {
    this.#grows = grows;
  }

  get items(): number {
    return this.#items;
  }

  get grows(): boolean {
    return this.#grows;
  }

  /** A request arrived: back to the short hold, from the next write on. */
  interrupted(): void {
    this.#holdMs = CHUNK_ITEMS.holdMs;
    this.#resize();
  }

  /** `quiet`: no request arrived since the write before. */
  wrote(items: number, ms: number, quiet: boolean): void {
    if (items === 0) return;
    const perItem = ms / items;
    this.#perItemMs = this.#perItemMs === undefined ? perItem : 0.7 * this.#perItemMs + 0.3 * perItem;
    this.#holdMs = this.#grows && quiet ? Math.min(CHUNK_ITEMS.quietHoldMs, this.#holdMs * 2) : CHUNK_ITEMS.holdMs;
    this.#resize();
  }

  #resize(): void {
    if (this.#perItemMs === undefined) return;
    const { min, max } = CHUNK_ITEMS;
    this.#items = Math.max(min, Math.min(max, Math.round(this.#holdMs / this.#perItemMs)));
  }
}

interface BatchRow extends TokenBatchRecord {
  actor: string;
  client_ip: string;
  request_id: string;
}

interface PendingItem {
  item_index: number;
  card: string;
  customer: string | null;
  reusable: boolean;
  decline_duplicates: boolean;
}

/** An item ready to be written: its token prepared (card sealed), or why it failed. */
type Ready = { item: PendingItem; token: PreparedToken } | { item: PendingItem; error: VaultError };
/** A chunk ready to be written, for its merchant as it was when its items were sealed. */
interface PreparedChunk {
  merchant: Merchant;
  items: Ready[];
}
type Outcome = { item: PendingItem; outcome: TokenOutcome } | { item: PendingItem; error: VaultError };

/** The token write of a batch item has no response of its own: the batch's results are its answer. */
const NO_RESPONSE = () => ({ status: 201, body: '' });

/**
 * The `token_batch.process` job: tokenizes a batch's items in index order,
 * a chunk at a time. Each chunk's items are decrypted on the card decrypt
 * pool and sealed (the next few chunks' while this one is written), then
 * written in one transaction — each item with the outcome `POST /v1/tokens`
 * would have had (`prepareToken`; `tessera_create_batch_tokens` writes the
 * items nothing can refuse together and the others through
 * `tessera_create_token`), its result, the batch's counts and the failed
 * items' audit entries — so a vault killed mid-batch loses no item
 * and makes none twice: the next claim goes on with the items still pending.
 * An item's failure is its result and never stops the batch. Once none is
 * pending, the batch is completed and its `token_batch.completed` event
 * written with the job's completion.
 */
export function tokenBatchJob(deps: TokenBatchProcessorDeps): JobHandler<{ batch: string }> {
  return {
    kind: TOKEN_BATCH_JOB,
    payload: z.object({ batch: z.string() }),
    // A batch already keeps every core busy; batches wait their turn (each vault process runs one).
    concurrency: 1,
    async run(job) {
      try {
        await new BatchRun(deps, job).run();
      } finally {
        deps.pool.forgetKeys();
      }
    },
  };
}

class BatchRun {
  readonly #deps: TokenBatchProcessorDeps;
  readonly #job: Job<{ batch: string }>;
  readonly #keys = new Map<string, Promise<KeyObject | undefined>>();
  #refused: Promise<Record<string, RefusalResult>> | undefined;

  constructor(deps: TokenBatchProcessorDeps, job: Job<{ batch: string }>) {
    this.#deps = deps;
    this.#job = job;
  }

  async run(): Promise<void> {
    const { db } = this.#deps;
    const batch = await this.#load();
    if (batch === undefined || batch.status === 'completed') return db.transaction((tx) => this.#job.complete(tx));
    await db.query(`update token_batches set status = 'processing', updated_at = now() where id = $1 and status = 'pending'`, [batch.id]);
    // Thousands of rows just arrived: without fresh statistics the planner takes a batch for a few rows and reads
    // all of its items for every chunk (and every page of results). PGlite has no autovacuum to do it; on
    // PostgreSQL it would come only later. It samples a bounded number of rows, whatever the table's size.
    await db.query('analyze token_batch_items');

    const traffic = this.#deps.traffic;
    const size = new ChunkSize(db.kind === 'pglite' && traffic !== undefined);
    const chunks = this.#chunks(batch.id, size);
    // Chunks being decrypted and sealed, in order: the one to write next first.
    const ahead: Promise<PreparedChunk>[] = [];
    const fill = async () => {
      while (ahead.length < CHUNKS_AHEAD) {
        const next = await chunks.next();
        if (next.done) return;
        const ready = this.#prepare(batch, next.value);
        // A failed write must not leave a later chunk's failure unobserved.
        ready.catch(() => undefined);
        ahead.push(ready);
      }
    };
    // Requests the process had received when the last write ended.
    let seen = traffic?.arrived;
    try {
      await fill();
      while (ahead.length > 0) {
        this.#job.signal.throwIfAborted();
        let chunk = await ahead.shift()!;
        await fill();
        // PGlite runs one transaction at a time: a request arriving now would wait for the whole chunk. (Not timed: the
        // wait is no part of the chunk's size.)
        if (db.kind === 'pglite') await traffic?.whenIdle();
        const quiet = traffic?.arrived === seen;
        // Prepared under a hold grown while no request came, it may be twice what a request should now wait for: the
        // rest goes next. (Only then: splitting whenever the time per item moved would leave small remainders, each
        // paying a chunk's fixed cost.)
        if (!quiet && size.grows) {
          size.interrupted();
          if (chunk.items.length >= 2 * size.items) {
            ahead.unshift(Promise.resolve({ merchant: chunk.merchant, items: chunk.items.slice(size.items) }));
            chunk = { merchant: chunk.merchant, items: chunk.items.slice(0, size.items) };
          }
        }
        const started = performance.now();
        await this.#write(batch, chunk);
        const ms = performance.now() - started;
        size.wrote(chunk.items.length, ms, quiet && traffic?.arrived === seen);
        seen = traffic?.arrived;
      }
    } finally {
      // The threads keep this run's keys until the chunks still being opened are done (the job then forgets them).
      await Promise.allSettled(ahead);
    }
    await this.#finish(batch);
  }

  async #load(): Promise<BatchRow | undefined> {
    const { rows } = await this.#deps.db.query<BatchRow>(`select ${BATCH_COLUMNS}, actor, client_ip, request_id from token_batches where id = $1`, [
      this.#job.payload.batch,
    ]);
    return rows[0];
  }

  /** The pending items in index order, a chunk at a time (`size` when it is taken), read a few chunks per statement. */
  async *#chunks(batchId: string, size: ChunkSize): AsyncGenerator<PendingItem[]> {
    let buffered: PendingItem[] = [];
    let after = -1;
    let more = true;
    for (;;) {
      if (buffered.length < size.items && more) {
        const { rows } = await this.#deps.db.query<PendingItem>(
          `select item_index, card, customer, reusable, decline_duplicates from token_batch_items
            where batch_id = $1 and state = 'pending' and item_index > $2
            order by item_index
            limit $3`,
          [batchId, after, READ_ITEMS],
        );
        buffered = buffered.concat(rows);
        more = rows.length === READ_ITEMS;
        if (rows.length > 0) after = rows.at(-1)!.item_index;
      }
      if (buffered.length === 0) return;
      yield buffered.splice(0, size.items);
    }
  }

  /**
   * Checks each item's JWE here, against the batch's acceptance time (its
   * `iat` window, and the transport keys that could open it then), decrypts
   * it on the pool and seals it (`prepareToken`) as soon as it is open. A
   * refusal is the item's outcome; the pool failing is the run's (it is
   * retried).
   */
  async #prepare(batch: BatchRow, items: PendingItem[]): Promise<PreparedChunk> {
    const { cards, pool } = this.#deps;
    const merchant = await this.#deps.merchants.byId(batch.merchant_id);
    if (merchant === undefined) throw new Error(`token batch ${batch.id}: its merchant is gone`);
    const acceptedAt = batch.created_at.getTime();
    const keys: Pick<TransportKeyring, 'resolve'> = { resolve: (kid, at) => this.#key(kid, at) };
    const write = { actor: batch.actor, source: { clientIp: batch.client_ip, requestId: batch.request_id }, render: NO_RESPONSE };
    const ready = await Promise.all(
      items.map(async (item): Promise<Ready> => {
        let card: Card;
        try {
          const { kid, key } = await cardCiphertextKey(item.card, keys, cards.ciphertextPolicy, 'card', acceptedAt);
          card = await pool.open(item.card, kid, key);
        } catch (error) {
          if (error instanceof VaultError) return { item, error };
          throw error;
        }
        const input = { merchant, ciphertext: item.card, reusable: item.reusable, customer: item.customer ?? undefined, declineDuplicates: item.decline_duplicates };
        return { item, token: await prepareToken(cards, input, card, write) };
      }),
    );
    return { merchant, items: ready };
  }

  /** One transport key lookup per kid and run, not per item. */
  #key(kid: string, at: Date | undefined): Promise<KeyObject | undefined> {
    let key = this.#keys.get(kid);
    if (key === undefined) {
      key = this.#deps.cards.keyring.resolve(kid, at);
      this.#keys.set(kid, key);
    }
    return key;
  }

  /**
   * Writes a chunk: its items' tokens (each with the outcome
   * `POST /v1/tokens` would have had, a refusal being that item's result),
   * every item's result with the batch's counts, and the failed items' audit
   * entries, in one call of `tessera_write_batch_chunk` — one statement, its
   * own transaction, unless the merchant has unique tokens: then in a
   * transaction, since an item whose card already has a token is answered
   * that token, refreshed here (`settle`) before the results are recorded.
   * Sealing happened before (`#prepare`).
   */
  async #write(batch: BatchRow, { merchant, items: ready }: PreparedChunk): Promise<void> {
    const tokens = ready.filter((r): r is Extract<Ready, { token: PreparedToken }> => 'token' in r);
    const failed = ready.filter((r): r is Extract<Ready, { error: VaultError }> => 'error' in r).map(failedResult);
    const args = async (finish: boolean) => ({
      batch_id: batch.id,
      merchant_id: merchant.id,
      unique_tokens: merchant.unique_tokens,
      // Set-wise writes measured faster on PGlite and slower on PostgreSQL (docs/benchmarks.md, "A chunk in one statement").
      together: this.#deps.db.kind === 'pglite',
      items: JSON.stringify(tokens.map((r) => ({ item_index: r.item.item_index, fingerprint: r.token.fingerprint, ...r.token.batchItem }))),
      failed: JSON.stringify(failed),
      refusals: JSON.stringify(tokens.length === 0 ? {} : await this.#refusals(tokens[0]!.token)),
      finish,
      actor: batch.actor,
      client_ip: batch.client_ip,
      request_id: batch.request_id,
    });
    if (!merchant.unique_tokens) {
      await callFunction(this.#deps.db, 'tessera_write_batch_chunk', await args(true));
      return;
    }
    const written = await args(false);
    await this.#deps.db.transaction(async (tx) => {
      const { rows } = await callFunction<Record<string, string> | null>(tx, 'tessera_write_batch_chunk', written);
      const answers = rows[0]!.result;
      if (answers === null) return;
      const outcomes: Outcome[] = [];
      for (const r of ready) {
        if ('error' in r) {
          outcomes.push(r);
          continue;
        }
        const answer = answers[String(r.item.item_index)];
        if (answer === undefined || answer === 'skipped') continue;
        try {
          outcomes.push({ item: r.item, outcome: (await r.token.settle(tx, answer)).outcome });
        } catch (error) {
          if (!(error instanceof VaultError)) throw error;
          outcomes.push({ item: r.item, error });
        }
      }
      await recordOutcomes(tx, batch, outcomes);
    });
  }

  /**
   * The result of an item `tessera_create_token` refused, by SQLSTATE: the
   * error `settle` turns that refusal into (what `POST /v1/tokens` would
   * answer), so `tessera_write_batch_chunk` records it without a round trip
   * back here. Once per run; a refusal settles without the database.
   */
  #refusals(token: PreparedToken): Promise<Record<string, RefusalResult>> {
    this.#refused ??= (async () => {
      const results: Record<string, RefusalResult> = {};
      for (const state of BATCH_REFUSALS) {
        try {
          await token.settle(this.#deps.db, `refused:${state}`);
        } catch (error) {
          if (!(error instanceof VaultError)) throw error;
          results[state] = { error_code: error.code, error_message: error.message, error_param: error.param ?? null };
        }
      }
      return results;
    })();
    return this.#refused;
  }

  /**
   * Once no item is pending: the batch's network tokens are requested (when
   * it asks for them), and the batch is completed with its event unless
   * they are still to settle (their jobs complete it then) — all with the
   * job's completion.
   */
  async #finish(batch: BatchRow): Promise<void> {
    const completed = await this.#deps.db.transaction(async (tx) => {
      await tx.query('select 1 from token_batches where id = $1 for update', [batch.id]);
      const { rows: left } = await tx.query<{ pending: number }>(
        `select count(*)::integer as pending from token_batch_items where batch_id = $1 and state = 'pending'`,
        [batch.id],
      );
      // Items still pending (a run whose lease ran out wrote meanwhile, or this one lost its way): the next claim goes on.
      if ((left[0]?.pending ?? 0) > 0) throw new Error(`token batch ${batch.id}: items are still pending at its end`);
      await requestBatchNetworkTokens(tx, batch.id);
      await this.#job.complete(tx);
      return completeTokenBatchIfSettled(tx, this.#deps.audit, batch.id);
    });
    this.#deps.log.info({ token_batch: batch.id }, completed ? 'token batch completed' : 'token batch tokenized; its network tokens are being requested');
  }
}

/**
 * What `tessera_create_token` refuses a batch item with (a merchant server's
 * tokenization: no session, Idempotency-Key or transport key to check):
 * replayed_ciphertext, duplicate_card, token_value_taken.
 */
const BATCH_REFUSALS = ['TV001', 'TV002', 'TV003'] as const;

type RefusalResult = Pick<FailedResult, 'error_code' | 'error_message' | 'error_param'>;

interface FailedResult {
  item_index: number;
  state: 'failed';
  error_code: string;
  error_message: string;
  error_param: string | null;
  audit_id: string;
}

/** A failed item's result, as `tessera_record_batch_results` records it. */
function failedResult({ item, error }: { item: Pick<PendingItem, 'item_index'>; error: VaultError }): FailedResult {
  const { code, message, param } = error;
  return { item_index: item.item_index, state: 'failed', error_code: code, error_message: message, error_param: param ?? null, audit_id: newId('evt') };
}

/** Each item's result, the batch's counts and the failed items' audit entries, in one call. */
async function recordOutcomes(tx: Queryable, batch: BatchRow, outcomes: Outcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  const results = outcomes.map((o) => {
    if ('outcome' in o) {
      const { token, brand, last4, exp_month, exp_year } = o.outcome.token;
      return { item_index: o.item.item_index, state: 'succeeded', token, brand, last4, exp_month, exp_year };
    }
    return failedResult(o);
  });
  await callFunction(tx, 'tessera_record_batch_results', {
    batch_id: batch.id,
    merchant_id: batch.merchant_id,
    results: JSON.stringify(results),
    actor: batch.actor,
    client_ip: batch.client_ip,
    request_id: batch.request_id,
  });
}
