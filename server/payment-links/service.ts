import { z } from 'zod';
import type { AuditEntry, AuditLog, AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { enqueueJob, RetryJobLater, type JobHandler } from '../jobs/index.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import type { PaymentRecord, PaymentService } from '../payments/service.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { newestFirst } from '../storage/pagination.ts';
import { DEFAULT_LIFETIME_MS, MAX_LIFETIME_MS, type CreatePaymentLinkInput } from './schema.ts';
import { currentStatus, paymentLinkBody, type PaymentLinkRecord } from './serialize.ts';

/** The job that expires a link at its `expires_at`. */
export const PAYMENT_LINK_EXPIRY_JOB = 'payment_link.expire';

/** How long a payer holds a link's slot while its payment is made; one whose process died frees it after this. */
const ATTEMPT_HOLD_SECONDS = 120;

/** Who the audit log names for a payment made on the hosted page: a shopper, with no key. */
export const SHOPPER_ACTOR = 'shopper';

const COLUMNS = `id, merchant_id, url, status, amount::float8 as amount, currency, description, reference, customer_email, max_payments,
  payments_count, latest_payment, expires_at, created_at, completed_at, expired_at`;

export interface LinkWrite {
  claim: IdempotencyClaim | undefined;
  actor: string;
  source: AuditSource;
}

/**
 * Payment links: made by the merchant's server, paid by shoppers on the
 * vault's hosted page (`/pay/plink_…`), expired by a job at `expires_at` or
 * by the merchant. A payment takes one of the link's slots before the
 * acquirer is asked (under the link's row lock), so concurrent payers can
 * never make more payments than `max_payments`; the payment, the link's
 * count and its `payment_link.paid` event commit together.
 */
export class PaymentLinks {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #payments: PaymentService;

  constructor(deps: { db: Db; audit: AuditLog; payments: PaymentService }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#payments = deps.payments;
  }

  /** Makes a link; its row, its expiry job, the idempotent answer and its `payment_link.created` event commit together. */
  async create(merchant: Merchant, input: CreatePaymentLinkInput, origin: string, write: LinkWrite): Promise<StoredResponse> {
    const now = Date.now();
    const expiresAt = input.expires_at === undefined ? new Date(now + DEFAULT_LIFETIME_MS) : new Date(input.expires_at);
    if (expiresAt.getTime() <= now) throw new VaultError('parameter_invalid', { message: 'expires_at must be in the future.', param: 'expires_at' });
    if (expiresAt.getTime() > now + MAX_LIFETIME_MS) {
      throw new VaultError('parameter_invalid', { message: 'expires_at must be at most 70 days from now.', param: 'expires_at' });
    }
    const id = newId('plink');
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<PaymentLinkRecord>(
        `insert into payment_links (id, merchant_id, url, amount, currency, description, reference, customer_email, max_payments, expires_at,
                                    actor, client_ip, request_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         returning ${COLUMNS}`,
        [
          id,
          merchant.id,
          `${origin}/pay/${id}`,
          input.amount,
          input.currency,
          input.description ?? null,
          input.reference ?? null,
          input.customer_email ?? null,
          input.max_payments,
          expiresAt,
          write.actor,
          write.source.clientIp,
          write.source.requestId,
        ],
      );
      const link = rows[0]!;
      await enqueueJob(tx, { kind: PAYMENT_LINK_EXPIRY_JOB, key: id, payload: { link: id }, delayMs: expiresAt.getTime() - now, maxAttempts: 100 });
      const response = { status: 201, body: JSON.stringify(paymentLinkBody(link)) };
      await recordResponse(tx, write.claim, response);
      // Last: an audit entry locks its merchant's chain until commit.
      await this.#audit.record(linkEvent(link, 'payment_link.created', write), tx);
      return response;
    });
  }

  /** A link of this merchant; another merchant's is `payment_link_not_found`, as an unknown one. */
  async get(merchantId: string, id: string): Promise<PaymentLinkRecord> {
    const { rows } = await this.#db.query<PaymentLinkRecord>(`select ${COLUMNS} from payment_links where merchant_id = $1 and id = $2`, [merchantId, id]);
    if (rows[0] === undefined) throw new VaultError('payment_link_not_found', { param: 'id' });
    return rows[0];
  }

  /** A link by its id alone, for the hosted page (the id is the link's secret: 128 random bits). */
  async find(id: string): Promise<PaymentLinkRecord | undefined> {
    const { rows } = await this.#db.query<PaymentLinkRecord>(`select ${COLUMNS} from payment_links where id = $1`, [id]);
    return rows[0];
  }

  /** Newest first; `status` filters by the current status (an active link past its expiry is expired). */
  async list(
    merchantId: string,
    filter: { status?: PaymentLinkRecord['status'] | undefined; limit: number; startingAfter?: string | undefined },
  ): Promise<{ links: PaymentLinkRecord[]; hasMore: boolean }> {
    const current = `case when status = 'active' and expires_at <= now() then 'expired' else status end`;
    const page = await newestFirst<PaymentLinkRecord>(this.#db, {
      select: COLUMNS,
      from: 'payment_links',
      idColumn: 'id',
      merchantId,
      where: `($3::text is null or ${current} = $3)`,
      params: [filter.status ?? null],
      limit: filter.limit,
      startingAfter: filter.startingAfter,
      notFound: 'payment_link_not_found',
    });
    return { links: page.rows, hasMore: page.hasMore };
  }

  /**
   * Expires an active link now (`payment_link.expired`). An expired link is
   * answered as it is, with no second event; a completed one cannot expire.
   */
  async expire(merchant: Merchant, id: string, write: LinkWrite): Promise<StoredResponse> {
    return this.#db.transaction(async (tx) => {
      const link = await lockLink(tx, id, merchant.id);
      if (link.status === 'completed') throw new VaultError('payment_link_completed', { param: 'id' });
      const result = link.status === 'active' ? await markExpired(tx, id) : link;
      const response = { status: 200, body: JSON.stringify(paymentLinkBody(result)) };
      await recordResponse(tx, write.claim, response);
      if (link.status === 'active') await this.#audit.record(linkEvent(result, 'payment_link.expired', write), tx);
      return response;
    });
  }

  /**
   * Pays a link with a single-use token the hosted page's card fields made.
   * A slot is taken first (refused when the link is completed, expired, or
   * every slot left is held by a payment in flight), then the payment is
   * made as `POST /v1/payments` makes it; an approved one counts on the link
   * in the payment's own transaction. The answer is the payment's: 201 with
   * the payment, or 402 `card_declined` (the slot is free again).
   */
  async pay(link: PaymentLinkRecord, merchant: Merchant, token: string, write: LinkWrite): Promise<StoredResponse> {
    await this.#checkToken(merchant.id, token);
    const attempt = newId('plat');
    await this.#db.transaction(async (tx) => {
      const locked = await lockLink(tx, link.id);
      const status = currentStatus(locked);
      if (status === 'completed') throw new VaultError('payment_link_completed');
      if (status === 'expired') throw new VaultError('payment_link_expired');
      const { rows } = await tx.query<{ held: number }>(
        'select count(*)::integer as held from payment_link_attempts where link_id = $1 and expires_at > now()',
        [link.id],
      );
      if (locked.payments_count + rows[0]!.held >= locked.max_payments) throw new VaultError('payment_link_busy', { retryAfterSeconds: 1 });
      await tx.query(`insert into payment_link_attempts (id, link_id, expires_at) values ($1, $2, now() + make_interval(secs => $3))`, [
        attempt,
        link.id,
        ATTEMPT_HOLD_SECONDS,
      ]);
    });
    try {
      return await this.#payments.create(
        {
          token,
          amount: link.amount,
          currency: link.currency,
          capture: true,
          reference: link.reference ?? undefined,
          recurring: false,
          cvc: undefined,
          initiator: 'customer',
          setup_future_usage: false,
          channel: 'ecommerce',
        },
        { merchant, actor: write.actor, source: write.source, claim: write.claim, along: (tx, payment) => this.#count(tx, link.id, attempt, payment, write) },
      );
    } finally {
      await this.#db.query('delete from payment_link_attempts where id = $1', [attempt]).catch(() => undefined);
    }
  }

  /**
   * In the payment's transaction: the slot is given back, and an approved
   * payment counts on the link (completing it at `max_payments`) with its
   * `payment_link.paid` event. A payment approved after the link was
   * expired by hand still counts: the money was taken.
   */
  async #count(tx: Queryable, linkId: string, attempt: string, payment: PaymentRecord, write: LinkWrite): Promise<AuditEntry[]> {
    await tx.query('delete from payment_link_attempts where id = $1', [attempt]);
    if (payment.status === 'declined') return [];
    await tx.query('insert into payment_link_payments (link_id, payment_id) values ($1, $2)', [linkId, payment.id]);
    const { rows } = await tx.query<PaymentLinkRecord>(
      `update payment_links
          set payments_count = payments_count + 1, latest_payment = $2, updated_at = now(),
              status = case when status = 'active' and payments_count + 1 >= max_payments then 'completed' else status end,
              completed_at = case when status = 'active' and payments_count + 1 >= max_payments then now() else completed_at end
        where id = $1
        returning ${COLUMNS}`,
      [linkId, payment.id],
    );
    return [{ ...linkEvent(rows[0]!, 'payment_link.paid', write), paymentId: payment.id, token: payment.token }];
  }

  /** Only a single-use token made by the card fields (in a session) pays a link: never a card on file named by a shopper. */
  async #checkToken(merchantId: string, token: string): Promise<void> {
    const { rows } = await this.#db.query<{ reusable: boolean; session_id: string | null }>(
      'select reusable, session_id from tokens where merchant_id = $1 and token = $2',
      [merchantId, token],
    );
    const row = rows[0];
    if (row === undefined || row.reusable || row.session_id === null) throw new VaultError('token_not_found', { param: 'token' });
  }
}

/** The `payment_link.expire` job: at `expires_at`, an active link becomes expired, with its event. */
export function paymentLinkExpiryJob(deps: { db: Db; audit: AuditLog }): JobHandler<{ link: string }> {
  return {
    kind: PAYMENT_LINK_EXPIRY_JOB,
    payload: z.object({ link: z.string() }),
    concurrency: 4,
    async run(job) {
      await deps.db.transaction(async (tx) => {
        const { rows } = await tx.query<PaymentLinkRecord & { due_in_ms: number; actor: string; client_ip: string; request_id: string }>(
          `select ${COLUMNS}, actor, client_ip, request_id, greatest(0, extract(epoch from expires_at - now()) * 1000)::float8 as due_in_ms
             from payment_links where id = $1 for update`,
          [job.payload.link],
        );
        const link = rows[0];
        if (link !== undefined && link.status === 'active') {
          // Claimed early (clocks apart, or a delay rounded down): come back when it is due.
          if (link.due_in_ms > 0) throw new RetryJobLater('the link is not due yet', { afterMs: Math.ceil(link.due_in_ms) });
          const expired = await markExpired(tx, link.id);
          // The expiry was set by the request that made the link: its entry names that request.
          const write = { actor: link.actor, source: { clientIp: link.client_ip, requestId: link.request_id } };
          await deps.audit.record(linkEvent(expired, 'payment_link.expired', write), tx);
        }
        await job.complete(tx);
      });
    },
  };
}

async function lockLink(tx: Queryable, id: string, merchantId?: string): Promise<PaymentLinkRecord> {
  const { rows } = await tx.query<PaymentLinkRecord>(`select ${COLUMNS} from payment_links where id = $1 and ($2::text is null or merchant_id = $2) for update`, [
    id,
    merchantId ?? null,
  ]);
  if (rows[0] === undefined) throw new VaultError('payment_link_not_found', { param: 'id' });
  return rows[0];
}

async function markExpired(tx: Queryable, id: string): Promise<PaymentLinkRecord> {
  const { rows } = await tx.query<PaymentLinkRecord>(
    `update payment_links set status = 'expired', expired_at = now(), updated_at = now() where id = $1 returning ${COLUMNS}`,
    [id],
  );
  return rows[0]!;
}

function linkEvent(
  link: PaymentLinkRecord,
  type: 'payment_link.created' | 'payment_link.paid' | 'payment_link.expired',
  write: Pick<LinkWrite, 'actor' | 'source'>,
): AuditEntry {
  return {
    merchantId: link.merchant_id,
    actor: write.actor,
    ...write.source,
    action: type,
    outcome: 'succeeded',
    event: { type, data: link },
  };
}
