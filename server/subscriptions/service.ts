import type { AuditLog, AuditSource } from '../audit/audit.ts';
import { READABLE } from '../cards/liveness.ts';
import { VaultError } from '../errors.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import { readClock } from '../sandbox/clock.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { newestFirst } from '../storage/pagination.ts';
import { SUBSCRIPTION_RECORD, subscriptionRecordOf, type SubscriptionRecord, type SubscriptionStatus } from './records.ts';
import type { CreateSubscriptionInput } from './schema.ts';
import { subscriptionBody } from './serialize.ts';

/** Who asks, and the Idempotency-Key claim the response is recorded against. */
export interface SubscriptionContext {
  merchant: Merchant;
  actor: string;
  source: AuditSource;
  claim: IdempotencyClaim | undefined;
}

/** A start this far behind the merchant's clock is taken as now (a request that was on its way); further back is refused. */
const START_SLACK_MS = 60_000;
/** The first charge may be scheduled at most this far ahead. */
const MAX_START_AHEAD_MS = 5 * 366 * 86_400_000;

/**
 * Subscriptions: a saved card with a stored credential charged on a
 * calendar by the vault itself (charger.ts), with merchant-initiated
 * payments. Creating and canceling one write the subscription, the response
 * and the event in one transaction.
 */
export class SubscriptionService {
  readonly #db: Db;
  readonly #audit: AuditLog;

  constructor(deps: { db: Db; audit: AuditLog }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
  }

  async create(input: CreateSubscriptionInput, ctx: SubscriptionContext): Promise<StoredResponse> {
    const { merchant } = ctx;
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ readable: boolean; reusable: boolean; customer: string | null; network_transaction_id: string | null }>(
        `select ${READABLE} as readable, reusable, customer, network_transaction_id from tokens where merchant_id = $1 and token = $2 for share`,
        [merchant.id, input.token],
      );
      const token = rows[0];
      if (token === undefined || !token.readable) throw new VaultError('token_not_found', { param: 'token' });
      // The vault will charge it without the cardholder: only a chain a customer-initiated payment set up allows that.
      if (!token.reusable || token.network_transaction_id === null) throw new VaultError('stored_credential_required', { param: 'token' });

      const { now } = await readClock(tx, merchant.id);
      let startAt = input.start_at === undefined ? now : new Date(input.start_at);
      if (startAt.getTime() < now.getTime() - START_SLACK_MS) {
        throw new VaultError('parameter_invalid', { message: "start_at is before the merchant's clock: the first charge cannot be in the past.", param: 'start_at' });
      }
      if (startAt.getTime() > now.getTime() + MAX_START_AHEAD_MS) {
        throw new VaultError('parameter_invalid', { message: 'start_at is at most 5 years ahead.', param: 'start_at' });
      }
      if (startAt.getTime() < now.getTime()) startAt = now;

      const inserted = await tx.query<{ record: unknown }>(
        `insert into subscriptions (merchant_id, id, token, customer, amount, currency, interval_unit, interval_count, start_at, reference, status, next_charge_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $9)
         returning ${SUBSCRIPTION_RECORD}`,
        [merchant.id, newId('sub'), input.token, token.customer, input.amount, input.currency, input.interval, input.interval_count, startAt, input.reference ?? null],
      );
      const subscription = subscriptionRecordOf(inserted.rows[0]!.record);
      return this.#answer(tx, ctx, 201, subscription, 'subscription.created');
    });
  }

  /**
   * Cancels at once: no charge after this. A try already at the acquirer is
   * still recorded (its period was due). Canceling a canceled subscription
   * answers it as it is.
   */
  async cancel(subscriptionId: string, ctx: SubscriptionContext): Promise<StoredResponse> {
    return this.#db.transaction(async (tx) => {
      const found = await tx.query<{ record: unknown }>(`select ${SUBSCRIPTION_RECORD} from subscriptions where merchant_id = $1 and id = $2 for update`, [
        ctx.merchant.id,
        subscriptionId,
      ]);
      if (found.rows[0] === undefined) throw new VaultError('subscription_not_found', { param: 'id' });
      const current = subscriptionRecordOf(found.rows[0].record);
      if (current.status === 'canceled') {
        const response = { status: 200, body: JSON.stringify(subscriptionBody(current)) };
        await recordResponse(tx, ctx.claim, response);
        return response;
      }
      const { rows } = await tx.query<{ record: unknown }>(
        `update subscriptions set status = 'canceled', canceled_at = tessera_merchant_now(merchant_id), next_charge_at = null,
                                  claimed_until = '-infinity', updated_at = now()
          where merchant_id = $1 and id = $2
          returning ${SUBSCRIPTION_RECORD}`,
        [ctx.merchant.id, subscriptionId],
      );
      return this.#answer(tx, ctx, 200, subscriptionRecordOf(rows[0]!.record), 'subscription.canceled');
    });
  }

  async get(merchantId: string, subscriptionId: string): Promise<SubscriptionRecord> {
    const { rows } = await this.#db.query<{ record: unknown }>(`select ${SUBSCRIPTION_RECORD} from subscriptions where merchant_id = $1 and id = $2`, [
      merchantId,
      subscriptionId,
    ]);
    if (rows[0] === undefined) throw new VaultError('subscription_not_found', { param: 'id' });
    return subscriptionRecordOf(rows[0].record);
  }

  /** Newest first; `startingAfter` is the last subscription id of the previous page. */
  async list(
    merchantId: string,
    filter: { customer?: string | undefined; token?: string | undefined; status?: SubscriptionStatus | undefined; limit: number; startingAfter?: string | undefined },
  ): Promise<{ subscriptions: SubscriptionRecord[]; hasMore: boolean }> {
    const page = await newestFirst<{ record: unknown }>(this.#db, {
      select: SUBSCRIPTION_RECORD,
      from: 'subscriptions',
      idColumn: 'id',
      merchantId,
      where: '($3::text is null or customer = $3) and ($4::text is null or token = $4) and ($5::text is null or status = $5)',
      params: [filter.customer ?? null, filter.token ?? null, filter.status ?? null],
      limit: filter.limit,
      startingAfter: filter.startingAfter,
      notFound: 'subscription_not_found',
    });
    return { subscriptions: page.rows.map((row) => subscriptionRecordOf(row.record)), hasMore: page.hasMore };
  }

  /** Records the response and, last (it locks the merchant's chain), the audit entry that is the event. */
  async #answer(
    tx: Queryable,
    ctx: SubscriptionContext,
    status: number,
    subscription: SubscriptionRecord,
    type: 'subscription.created' | 'subscription.canceled',
  ): Promise<StoredResponse> {
    const response = { status, body: JSON.stringify(subscriptionBody(subscription)) };
    await recordResponse(tx, ctx.claim, response);
    await this.#audit.record(
      { merchantId: ctx.merchant.id, actor: ctx.actor, ...ctx.source, action: type, outcome: 'succeeded', token: subscription.token, event: { type, data: subscription } },
      tx,
    );
    return response;
  }
}
