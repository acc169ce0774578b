import type { IntervalUnit } from './calendar.ts';

export type SubscriptionStatus = 'active' | 'past_due' | 'unpaid' | 'canceled';

/** A subscription as the vault stores and reports it (tessera_subscription_record); never card data. */
export interface SubscriptionRecord {
  id: string;
  token: string;
  customer: string | null;
  amount: number;
  currency: string;
  interval_unit: IntervalUnit;
  interval_count: number;
  start_at: Date;
  reference: string | null;
  status: SubscriptionStatus;
  /** The period to charge next (0: the first); the periods before it are paid. */
  period: number;
  /** Which try at that period is next: 0 on its date, 1–3 the retries after declines. */
  attempt: number;
  next_charge_at: Date | null;
  current_period_start: Date | null;
  current_period_end: Date | null;
  latest_payment: string | null;
  canceled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** `select ${SUBSCRIPTION_RECORD} from subscriptions …` or `returning ${SUBSCRIPTION_RECORD}`. */
export const SUBSCRIPTION_RECORD = 'tessera_subscription_record(subscriptions) as record';

const DATES = ['start_at', 'next_charge_at', 'current_period_start', 'current_period_end', 'canceled_at', 'created_at', 'updated_at'] as const;

/** A record from tessera_subscription_record, as json text or parsed (a stored event's data). */
export function subscriptionRecordOf(record: unknown): SubscriptionRecord {
  const raw = (typeof record === 'string' ? JSON.parse(record) : record) as Record<string, unknown>;
  const parsed: Record<string, unknown> = { ...raw, amount: Number(raw['amount']) };
  for (const field of DATES) parsed[field] = raw[field] == null ? null : new Date(String(raw[field]));
  return parsed as unknown as SubscriptionRecord;
}
