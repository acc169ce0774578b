import type { Logger } from 'pino';
import type { AuditLog, AuditSource } from '../audit/audit.ts';
import { TOKEN_RECORD, tokenRecordOf } from '../cards/records.ts';
import { READABLE } from '../cards/liveness.ts';
import { VaultError } from '../errors.ts';
import { enqueueJob } from '../jobs/index.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import type { CardSealer } from '../keys/card-keys.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant, MerchantDirectory } from '../merchants/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { LifecycleRefused, type LifecycleChange, type SandboxTokenService } from './sandbox.ts';
import { NETWORK_TOKEN_COLUMNS, networkTokenBody, type NetworkTokenRecord } from './serialize.ts';
import { networkOf, type Network, type TokenService, type TokenState } from './token-service.ts';
import type { NetworkTokenInput } from './schema.ts';

export const PROVISION_JOB = 'network_token.provision';

/** How long `mode: "sync"` waits for the token service (api.md). */
const SYNC_TIMEOUT_MS = 10_000;

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

/** Work done in the transaction that settles a network token (its event's): the job's completion, a stored answer. */
type Within = (tx: Queryable, record: NetworkTokenRecord) => Promise<void>;

/**
 * Network tokens: the vault asks a card network's token service for a
 * network token for a card it holds, keeps the token number (DPAN) sealed like
 * a card number, uses it with a fresh cryptogram for payments, and follows
 * the issuer's changes. Every change is a `network_token.*` event written in
 * the transaction of the change.
 */
export class NetworkTokens {
  readonly #deps: NetworkTokenDeps;

  constructor(deps: NetworkTokenDeps) {
    this.#deps = deps;
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
    // Answered once settled, in the transaction of its event; a job takes over if the network answers pending or this request fails.
    const outcome = await this.provision(id, {
      signal: AbortSignal.timeout(SYNC_TIMEOUT_MS),
      within: async (tx, record) => recordResponse(tx, ctx.claim, { status: 201, body: JSON.stringify(networkTokenBody(record)) }),
    }).catch(async (error: unknown) => {
      await enqueueJob(db, { kind: PROVISION_JOB, key: id, payload: { network_token: id } });
      throw error;
    });
    if (outcome.settled) return { status: 201, body: JSON.stringify(networkTokenBody(outcome.record)) };
    return db.transaction(async (tx) => {
      await enqueueJob(tx, { kind: PROVISION_JOB, key: id, payload: { network_token: id }, delayMs: outcome.retryAfterMs });
      const response = { status: 202, body: JSON.stringify(networkTokenBody(outcome.record)) };
      await recordResponse(tx, ctx.claim, response);
      return response;
    });
  }

  /**
   * Asks the network for this network token (again: the request id is the
   * network token's id, so a repeat gets the same token) and records the
   * answer: metadata, the DPAN sealed, `network_token.created`, and `within`,
   * all in one transaction that only the first settlement commits.
   */
  async provision(id: string, options: { signal?: AbortSignal | undefined; within?: Within | undefined } = {}): Promise<Provisioned> {
    const { db, cards, merchants, services } = this.#deps;
    const row = await this.#row(id);
    if (row === undefined) throw new Error(`network token ${id} is gone`);
    if (row.settled_at !== null || !row.readable || row.card_sealed === null) {
      return this.#settle(row, !row.readable || row.card_sealed === null ? { status: 'deleted' } : undefined, options.within);
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
    return this.#settle(row, answer, options.within, merchant);
  }

  /** Writes the network's final answer once, with its event; a second settlement (a retried job) only runs `within`. */
  async #settle(
    row: ProvisionRow,
    answer: TokenState | { status: 'ineligible' | 'declined' | 'deleted' } | undefined,
    within: Within | undefined,
    merchant?: Merchant,
  ): Promise<Provisioned> {
    const { db, cards } = this.#deps;
    const sealed = answer !== undefined && 'dpan' in answer && merchant !== undefined ? cards.seal(merchant, { token: row.id }, { number: answer.dpan }) : undefined;
    const meta = answer !== undefined && 'dpan' in answer ? answer : undefined;
    return db.transaction(async (tx) => {
      // A batch's token: its row first, the lock every settlement of the batch takes in the same order.
      if (row.batch_id !== null) await tx.query('select 1 from token_batches where id = $1 for update', [row.batch_id]);
      let record: NetworkTokenRecord = row;
      if (answer !== undefined) {
        const { rows } = await tx.query<NetworkTokenRecord>(
          `update network_tokens set status = $2, token_id = coalesce($3, token_id), token_last4 = coalesce($4, token_last4),
                  token_exp_month = coalesce($5, token_exp_month), token_exp_year = coalesce($6, token_exp_year),
                  pan_last4 = coalesce($7, pan_last4), par = coalesce($8, par), card_art_id = coalesce($9, card_art_id),
                  issuer_name = coalesce($10, issuer_name), dpan_sealed = $11, dpan_key_sealed = $12, data_key_version = $13,
                  settled_at = now(), updated_at = now()
            where id = $1 and settled_at is null
            returning ${NETWORK_TOKEN_COLUMNS}`,
          [
            row.id,
            answer.status,
            meta?.tokenId ?? null,
            meta?.dpan.slice(-4) ?? null,
            meta?.token_exp_month ?? null,
            meta?.token_exp_year ?? null,
            meta?.pan_last4 ?? null,
            meta?.par ?? null,
            meta?.card_art_id ?? null,
            meta?.issuer_name ?? null,
            sealed?.card_sealed ?? null,
            sealed?.card_key_sealed ?? null,
            sealed?.data_key_version ?? null,
          ],
        );
        if (rows[0] !== undefined) {
          record = rows[0];
          await within?.(tx, record);
          // A vault token deleted before its network token was asked for: nothing happened the merchant needs to hear of.
          if (answer.status !== 'deleted') {
            await this.#event(tx, 'network_token.created', record, { actor: row.actor, source: { clientIp: row.client_ip ?? '', requestId: row.request_id ?? '' } });
          }
          // The batch's last network token completes it, its event after this one's.
          if (row.batch_id !== null) await this.#deps.onBatchSettled?.(tx, row.batch_id);
          return { record, settled: true as const };
        }
        record = (await this.#row(row.id, tx)) ?? row;
      }
      await within?.(tx, record);
      return { record, settled: true as const };
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

  async #applyNetworkUpdate(
    tx: Queryable,
    merchant: Merchant,
    network: Network,
    state: TokenState,
    panUpdate: boolean,
    ctx: NetworkTokenContext,
  ): Promise<NetworkTokenRecord[]> {
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
    for (const record of rows) await this.#event(tx, 'network_token.updated', record, ctx);
    if (panUpdate) {
      const tokens = [...new Set(rows.map((r) => r.token))];
      const updated = await tx.query<{ token: string; record: unknown }>(
        `update tokens set last4 = $3, exp_month = $4, exp_year = $5, updated_at = now()
          where merchant_id = $1 and token = any($2) and ${READABLE}
          returning token, ${TOKEN_RECORD}`,
        [merchant.id, tokens, state.pan_last4, state.pan_exp_month, state.pan_exp_year],
      );
      for (const row of updated.rows) {
        await this.#deps.audit.record(
          {
            merchantId: merchant.id,
            actor: ctx.actor,
            ...ctx.source,
            action: 'token.updated',
            outcome: 'succeeded',
            token: row.token,
            event: { type: 'token.updated', data: tokenRecordOf(row.record) },
          },
          tx,
        );
      }
    }
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

  async #row(id: string, q: Queryable = this.#deps.db): Promise<ProvisionRow | undefined> {
    const { rows } = await q.query<ProvisionRow>(
      `select n.id, n.merchant_id, n.token, n.network, n.status, n.token_id, n.token_last4, n.token_exp_month, n.token_exp_year, n.pan_last4, n.par,
              n.card_art_id, n.issuer_name, n.correlation_id, n.created_at, n.updated_at,
              n.account_id, n.email, n.batch_id, n.actor, n.client_ip, n.request_id, n.settled_at,
              t.card_sealed, t.card_key_sealed, t.data_key_version as card_data_key_version, t.exp_month, t.exp_year,
              tessera_token_readable(t) as readable
         from network_tokens n join tokens t on t.merchant_id = n.merchant_id and t.token = n.token
        where n.id = $1`,
      [id],
    );
    return rows[0];
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
    await this.#deps.audit.record(
      { merchantId: record.merchant_id, actor: ctx.actor, ...ctx.source, action: type, outcome: 'succeeded', token: record.token, event: { type, data: record } },
      tx,
    );
  }
}
