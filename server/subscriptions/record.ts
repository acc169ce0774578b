import type { AuditEntry, AuditLog, AuditSource } from '../audit/audit.ts';
import { COLUMNS as PAYMENT_COLUMNS, type PaymentRecord } from '../payments/service.ts';
import type { Queryable } from '../storage/db.ts';
import { periodStart, retryAt, type Schedule } from './calendar.ts';
import { subscriptionRecordOf, type SubscriptionRecord, type SubscriptionStatus } from './records.ts';

/** One try at charging a subscription's period, as a worker claimed it. */
export interface DueCharge {
  merchantId: string;
  subscriptionId: string;
  period: number;
  attempt: number;
  /** The try's date on the merchant's clock. */
  dueAt: Date;
  token: string;
  amount: number;
  currency: string;
  reference: string | null;
  schedule: Schedule;
}

/** What came of a try: a payment approved or declined at the acquirer, or none at all (the token is gone). */
export type ChargeOutcome = DueCharge &
  (
    | { result: 'approved'; paymentId: string; networkTransactionId: string | null; brand: string; last4: string }
    | { result: 'declined'; paymentId: string; declineCode: string; brand: string; last4: string }
    | { result: 'failed'; failureCode: 'token_not_found' | 'stored_credential_required' }
  );

/** Where the subscription goes after a try: the next period, the next retry, or unpaid. */
interface NextState {
  status: SubscriptionStatus;
  period: number;
  attempt: number;
  next_charge_at: Date | null;
  current_period_start: Date | null;
  current_period_end: Date | null;
}

export function nextState(outcome: ChargeOutcome): NextState {
  const { schedule, period, attempt } = outcome;
  if (outcome.result === 'approved') {
    return {
      status: 'active',
      period: period + 1,
      attempt: 0,
      next_charge_at: periodStart(schedule, period + 1),
      current_period_start: periodStart(schedule, period),
      current_period_end: periodStart(schedule, period + 1),
    };
  }
  const retry = retryAt(outcome.dueAt, attempt);
  return retry === undefined
    ? { status: 'unpaid', period, attempt, next_charge_at: null, current_period_start: null, current_period_end: null }
    : { status: 'past_due', period, attempt: attempt + 1, next_charge_at: retry, current_period_start: null, current_period_end: null };
}

const keyOf = (c: { merchantId: string; subscriptionId: string; period: number; attempt: number }) => `${c.merchantId}/${c.subscriptionId}/${c.period}/${c.attempt}`;

/**
 * Records a batch of tries in one transaction: each try's charge row (once:
 * its key is the subscription, period and attempt, so a try another worker
 * recorded first is skipped whole), its payment, the subscription's next
 * state and claim released, then the audit entries that are the payment and
 * subscription events — last, as every transaction writes them. A
 * subscription canceled while its try was at the acquirer keeps the payment
 * (the period was due) and stays canceled. Answers the tries it recorded.
 */
export async function recordCharges(tx: Queryable, audit: AuditLog, outcomes: readonly ChargeOutcome[], source: AuditSource & { actor: string }): Promise<ChargeOutcome[]> {
  if (outcomes.length === 0) return [];
  const current = await lockSubscriptions(tx, outcomes);
  const inserted = await tx.query<{ merchant_id: string; subscription_id: string; period: number; attempt: number }>(
    `insert into subscription_charges (merchant_id, subscription_id, period, attempt, due_at, payment_id, outcome, failure_code)
     select * from jsonb_to_recordset($1::jsonb)
       as x(merchant_id text, subscription_id text, period integer, attempt integer, due_at timestamptz, payment_id text, outcome text, failure_code text)
     on conflict do nothing
     returning merchant_id, subscription_id, period, attempt`,
    [
      JSON.stringify(
        outcomes.map((o) => ({
          merchant_id: o.merchantId,
          subscription_id: o.subscriptionId,
          period: o.period,
          attempt: o.attempt,
          due_at: o.dueAt,
          payment_id: o.result === 'failed' ? null : o.paymentId,
          outcome: o.result === 'approved' ? 'succeeded' : 'failed',
          failure_code: o.result === 'approved' ? null : o.result === 'declined' ? o.declineCode : o.failureCode,
        })),
      ),
    ],
  );
  const freshKeys = new Set(inserted.rows.map((row) => keyOf({ merchantId: row.merchant_id, subscriptionId: row.subscription_id, period: row.period, attempt: row.attempt })));
  const fresh = outcomes.filter((o) => freshKeys.has(keyOf(o)));
  const payments = await insertPayments(tx, fresh);

  const changes = outcomes.map((o) => {
    const now = current.get(`${o.merchantId}/${o.subscriptionId}`);
    const applies = freshKeys.has(keyOf(o)) && now !== undefined && now.period === o.period && now.attempt === o.attempt && (now.status === 'active' || now.status === 'past_due');
    return {
      merchant_id: o.merchantId,
      id: o.subscriptionId,
      changed: applies,
      latest_payment: freshKeys.has(keyOf(o)) && o.result !== 'failed' ? o.paymentId : null,
      ...(applies ? nextState(o) : {}),
    };
  });
  const { rows } = await tx.query<{ merchant_id: string; record: unknown }>(
    `update subscriptions s set
       status = case when x.changed then x.status else s.status end,
       period = case when x.changed then x.period else s.period end,
       attempt = case when x.changed then x.attempt else s.attempt end,
       next_charge_at = case when x.changed then x.next_charge_at else s.next_charge_at end,
       current_period_start = coalesce(x.current_period_start, s.current_period_start),
       current_period_end = coalesce(x.current_period_end, s.current_period_end),
       latest_payment = coalesce(x.latest_payment, s.latest_payment),
       claimed_until = '-infinity', updated_at = now()
     from jsonb_to_recordset($1::jsonb) as x(merchant_id text, id text, changed boolean, status text, period integer, attempt integer,
                                              next_charge_at timestamptz, current_period_start timestamptz, current_period_end timestamptz,
                                              latest_payment text)
     where s.merchant_id = x.merchant_id and s.id = x.id
     returning s.merchant_id, tessera_subscription_record(s) as record`,
    [JSON.stringify(changes)],
  );
  const after = new Map(rows.map((row) => [`${row.merchant_id}/${subscriptionRecordOf(row.record).id}`, subscriptionRecordOf(row.record)]));

  // Last: each audit entry locks its merchant's chain until commit.
  await audit.recordMany(fresh.flatMap((o) => chargeEntries(o, payments.get(keyOf(o)), after.get(`${o.merchantId}/${o.subscriptionId}`)!, source)), tx);
  return fresh;
}

/** Locks the batch's subscriptions in one order (merchant, id), so two workers' batches never wait on each other in a circle. */
async function lockSubscriptions(tx: Queryable, outcomes: readonly ChargeOutcome[]): Promise<Map<string, Pick<SubscriptionRecord, 'status' | 'period' | 'attempt'>>> {
  const { rows } = await tx.query<{ merchant_id: string; id: string; status: SubscriptionStatus; period: number; attempt: number }>(
    `select merchant_id, id, status, period, attempt from subscriptions
      where (merchant_id, id) in (select * from unnest($1::text[], $2::text[]))
      order by merchant_id, id
      for update`,
    [outcomes.map((o) => o.merchantId), outcomes.map((o) => o.subscriptionId)],
  );
  return new Map(rows.map((row) => [`${row.merchant_id}/${row.id}`, row]));
}

/** The payments of the tries that made one: merchant-initiated, under the subscription agreement, captured at once when approved. */
async function insertPayments(tx: Queryable, fresh: readonly ChargeOutcome[]): Promise<Map<string, PaymentRecord>> {
  const made = fresh.filter((o) => o.result !== 'failed');
  if (made.length === 0) return new Map();
  const { rows } = await tx.query<PaymentRecord & { merchant_id: string }>(
    `insert into payments (merchant_id, id, token, status, amount, currency, amount_captured, brand, last4, reference, recurring, decline_code,
                           initiator, agreement, channel, network_transaction_id, subscription_id)
     select merchant_id, id, token, status, amount, currency, case when status = 'captured' then amount else 0 end, brand, last4, reference, true,
            decline_code, 'merchant', 'subscription', 'ecommerce', network_transaction_id, subscription_id
       from jsonb_to_recordset($1::jsonb)
         as x(merchant_id text, id text, token text, status text, amount bigint, currency text, brand text, last4 text, reference text,
              decline_code text, network_transaction_id text, subscription_id text)
     returning merchant_id, ${PAYMENT_COLUMNS}`,
    [
      JSON.stringify(
        made.map((o) => ({
          merchant_id: o.merchantId,
          id: o.paymentId,
          token: o.token,
          status: o.result === 'approved' ? 'captured' : 'declined',
          amount: o.amount,
          currency: o.currency,
          brand: o.brand,
          last4: o.last4,
          reference: o.reference,
          decline_code: o.result === 'declined' ? o.declineCode : null,
          network_transaction_id: o.result === 'approved' ? o.networkTransactionId : null,
          subscription_id: o.subscriptionId,
        })),
      ),
    ],
  );
  const byId = new Map(rows.map(({ merchant_id, ...payment }) => [`${merchant_id}/${payment.id}`, payment as PaymentRecord]));
  return new Map(made.map((o) => [keyOf(o), byId.get(`${o.merchantId}/${o.paymentId}`)!]));
}

/** A try's audit entries, which are its events: the payment's (authorized and captured, or declined), then the subscription's. */
function chargeEntries(o: ChargeOutcome, payment: PaymentRecord | undefined, subscription: SubscriptionRecord, source: AuditSource & { actor: string }): AuditEntry[] {
  const base = { merchantId: o.merchantId, actor: source.actor, clientIp: source.clientIp, requestId: source.requestId, token: o.token, outcome: 'succeeded' as const };
  const entries: AuditEntry[] = [];
  if (payment !== undefined && payment.status === 'captured') {
    entries.push({ ...base, paymentId: payment.id, action: 'payment.authorized', event: { type: 'payment.authorized', data: { ...payment, status: 'authorized', amount_captured: 0 } } });
    entries.push({ ...base, paymentId: payment.id, action: 'payment.captured', event: { type: 'payment.captured', data: payment } });
  } else if (payment !== undefined) {
    entries.push({ ...base, paymentId: payment.id, action: 'payment.declined', code: payment.decline_code ?? undefined, event: { type: 'payment.declined', data: payment } });
  }
  const failure = o.result === 'approved' ? undefined : o.result === 'declined' ? o.declineCode : o.failureCode;
  entries.push({
    ...base,
    paymentId: payment?.id,
    action: failure === undefined ? 'subscription.charged' : 'subscription.charge_failed',
    code: failure,
    event: { type: failure === undefined ? 'subscription.charged' : 'subscription.charge_failed', data: subscription },
  });
  return entries;
}
