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
import type { MerchantDirectory } from '../merchants/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { callFunction } from '../storage/functions.ts';
import { prepareToken, type PreparedToken, type TokenOutcome } from '../tokens/create.ts';
import { tokenBatchBody, type TokenBatchRecord } from './serialize.ts';
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

/** How long a chunk's transaction waits on PGlite for the requests in flight to be answered before it goes anyway. */
const YIELD_TO_REQUESTS_MS = 50;

/**
 * Items written per transaction (one call of tessera_create_batch_tokens).
 * On PGlite a transaction holds the one database connection, so a chunk
 * there stays short (tens of milliseconds) for the requests waiting behind
 * it; on PostgreSQL other work goes on beside it.
 */
const CHUNK_ITEMS = { pglite: 32, postgres: 64 } as const;

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

/** An item after decryption: its card, or why it failed. */
type Opened = { item: PendingItem; card: Card } | { item: PendingItem; error: VaultError };
/** An item ready to be written: its token prepared (card sealed), or why it failed. */
type Ready = { item: PendingItem; token: PreparedToken } | { item: PendingItem; error: VaultError };
type Outcome = { item: PendingItem; outcome: TokenOutcome } | { item: PendingItem; error: VaultError };

/** The token write of a batch item has no response of its own: the batch's results are its answer. */
const NO_RESPONSE = () => ({ status: 201, body: '' });

/**
 * The `token_batch.process` job: tokenizes a batch's items in index order,
 * a chunk at a time. Each chunk's items are decrypted on the card decrypt
 * pool (the next chunk's while this one is written), then written in one
 * transaction — each item through the statement `POST /v1/tokens` uses
 * (`prepareToken`, `tessera_create_token` called per item by
 * `tessera_create_batch_tokens`), its result, the batch's counts and the
 * failed items' audit entries — so a vault killed mid-batch loses no item
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

    const chunkItems = CHUNK_ITEMS[db.kind];
    let chunk = await this.#pendingItems(batch.id, -1, chunkItems);
    let opening = this.#open(batch, chunk);
    while (chunk.length > 0) {
      this.#job.signal.throwIfAborted();
      const opened = await opening;
      // The next chunk is decrypted while this one is written.
      const next = await this.#pendingItems(batch.id, chunk.at(-1)!.item_index, chunkItems);
      opening = this.#open(batch, next);
      // A failed write must not leave the next chunk's decryption failing unobserved.
      opening.catch(() => undefined);
      await this.#write(batch, opened);
      chunk = next;
    }
    await this.#finish(batch);
  }

  async #load(): Promise<BatchRow | undefined> {
    const { rows } = await this.#deps.db.query<BatchRow>(`select ${BATCH_COLUMNS}, actor, client_ip, request_id from token_batches where id = $1`, [
      this.#job.payload.batch,
    ]);
    return rows[0];
  }

  async #pendingItems(batchId: string, after: number, limit: number): Promise<PendingItem[]> {
    const { rows } = await this.#deps.db.query<PendingItem>(
      `select item_index, card, customer, reusable, decline_duplicates from token_batch_items
        where batch_id = $1 and state = 'pending' and item_index > $2
        order by item_index
        limit $3`,
      [batchId, after, limit],
    );
    return rows;
  }

  /**
   * Checks each item's JWE here, against the batch's acceptance time (its
   * `iat` window, and the transport keys that could open it then), and
   * decrypts it on the pool. A refusal is the item's outcome; the pool
   * failing is the run's (it is retried).
   */
  #open(batch: BatchRow, items: PendingItem[]): Promise<Opened[]> {
    const { cards, pool } = this.#deps;
    const acceptedAt = batch.created_at.getTime();
    const keys: Pick<TransportKeyring, 'resolve'> = { resolve: (kid, at) => this.#key(kid, at) };
    return Promise.all(
      items.map(async (item): Promise<Opened> => {
        try {
          const { kid, key } = await cardCiphertextKey(item.card, keys, cards.ciphertextPolicy, 'card', acceptedAt);
          return { item, card: await pool.open(item.card, kid, key) };
        } catch (error) {
          if (error instanceof VaultError) return { item, error };
          throw error;
        }
      }),
    );
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
   * Writes a chunk in one transaction: its items' tokens through
   * `tessera_create_batch_tokens` (each as `POST /v1/tokens` would, a
   * refusal being that item's outcome), a unique token's refresh, every
   * item's result with the batch's counts, and the failed items' audit
   * entries. Sealing happens before the transaction opens.
   */
  async #write(batch: BatchRow, opened: Opened[]): Promise<void> {
    const merchant = await this.#deps.merchants.byId(batch.merchant_id);
    if (merchant === undefined) throw new Error(`token batch ${batch.id}: its merchant is gone`);
    const write = { actor: batch.actor, source: { clientIp: batch.client_ip, requestId: batch.request_id }, render: NO_RESPONSE };
    const ready = await Promise.all(
      opened.map(async (o): Promise<Ready> => {
        if ('error' in o) return o;
        const { item } = o;
        const input = {
          merchant,
          ciphertext: item.card,
          reusable: item.reusable,
          customer: item.customer ?? undefined,
          declineDuplicates: item.decline_duplicates,
        };
        return { item, token: await prepareToken(this.#deps.cards, input, o.card, write) };
      }),
    );
    const tokens = ready.filter((r): r is Extract<Ready, { token: PreparedToken }> => 'token' in r);
    // PGlite runs one transaction at a time: a request arriving now would wait for the whole chunk.
    if (this.#deps.db.kind === 'pglite') await this.#deps.traffic?.whenIdle(YIELD_TO_REQUESTS_MS);

    await this.#deps.db.transaction(async (tx) => {
      const { rows } = await callFunction<Record<string, string>>(tx, 'tessera_create_batch_tokens', {
        batch_id: batch.id,
        merchant_id: merchant.id,
        unique_tokens: merchant.unique_tokens,
        items: JSON.stringify(tokens.map((r) => ({ item_index: r.item.item_index, fingerprint: r.token.fingerprint, ...r.token.batchItem }))),
        actor: batch.actor,
        client_ip: batch.client_ip,
        request_id: batch.request_id,
      });
      const answers = rows[0]!.result;
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

  /** Completes the batch once no item is pending: its status, its event and the job's completion commit together. */
  async #finish(batch: BatchRow): Promise<void> {
    await this.#deps.db.transaction(async (tx) => {
      await tx.query('select 1 from token_batches where id = $1 for update', [batch.id]);
      const { rows: left } = await tx.query<{ pending: number }>(
        `select count(*)::integer as pending from token_batch_items where batch_id = $1 and state = 'pending'`,
        [batch.id],
      );
      // Items still pending (a run whose lease ran out wrote meanwhile, or this one lost its way): the next claim goes on.
      if ((left[0]?.pending ?? 0) > 0) throw new Error(`token batch ${batch.id}: items are still pending at its end`);
      const { rows } = await tx.query<TokenBatchRecord>(
        `update token_batches set status = 'completed', completed_at = now(), updated_at = now()
          where id = $1 and status <> 'completed'
          returning ${BATCH_COLUMNS}`,
        [batch.id],
      );
      const completed = rows[0];
      if (completed !== undefined) {
        await this.#deps.audit.record(
          {
            merchantId: batch.merchant_id,
            actor: batch.actor,
            action: 'token_batch.completed',
            outcome: 'succeeded',
            clientIp: batch.client_ip,
            requestId: batch.request_id,
            event: { type: 'token_batch.completed', data: tokenBatchBody(completed) },
          },
          tx,
        );
      }
      await this.#job.complete(tx);
    });
    this.#deps.log.info({ token_batch: batch.id }, 'token batch completed');
  }
}

/** Each item's result, the batch's counts and the failed items' audit entries, in one call. */
async function recordOutcomes(tx: Queryable, batch: BatchRow, outcomes: Outcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  const results = outcomes.map((o) => {
    if ('outcome' in o) {
      const { token, brand, last4, exp_month, exp_year } = o.outcome.token;
      return { item_index: o.item.item_index, state: 'succeeded', token, brand, last4, exp_month, exp_year };
    }
    const { code, message, param } = o.error;
    return { item_index: o.item.item_index, state: 'failed', error_code: code, error_message: message, error_param: param ?? null, audit_id: newId('evt') };
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
