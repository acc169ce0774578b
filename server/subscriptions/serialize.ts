import type { SubscriptionRecord } from './records.ts';

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

/** The subscription object of the API. */
export function subscriptionBody(subscription: SubscriptionRecord) {
  return {
    id: subscription.id,
    object: 'subscription' as const,
    status: subscription.status,
    token: subscription.token,
    customer: subscription.customer,
    amount: subscription.amount,
    currency: subscription.currency,
    interval: subscription.interval_unit,
    interval_count: subscription.interval_count,
    start_at: iso(subscription.start_at),
    reference: subscription.reference,
    next_charge_at: iso(subscription.next_charge_at),
    current_period_start: iso(subscription.current_period_start),
    current_period_end: iso(subscription.current_period_end),
    periods_paid: subscription.period,
    // Declined tries at the period now due: `attempt` is the next try's number, and an unpaid subscription's last try failed too.
    failed_attempts: subscription.attempt + (subscription.status === 'unpaid' ? 1 : 0),
    latest_payment: subscription.latest_payment,
    canceled_at: iso(subscription.canceled_at),
    created_at: iso(subscription.created_at),
    updated_at: iso(subscription.updated_at),
  };
}
