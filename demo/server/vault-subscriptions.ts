import { z } from 'zod';
import type { VaultClient } from './vault-client.ts';
import { PaymentSchema, type VaultPayment } from './vault-client.ts';

/** A subscription as the vault answers it (the fields the shop shows). */
export const SubscriptionSchema = z.object({
  id: z.string().regex(/^sub_[A-Za-z0-9]{1,64}$/),
  status: z.enum(['active', 'past_due', 'unpaid', 'canceled']),
  token: z.string(),
  customer: z.string().nullable(),
  amount: z.number(),
  currency: z.string(),
  interval: z.enum(['day', 'week', 'month', 'year']),
  interval_count: z.number().int(),
  reference: z.string().nullable(),
  next_charge_at: z.string().nullable(),
  current_period_end: z.string().nullable(),
  periods_paid: z.number().int(),
  failed_attempts: z.number().int(),
  canceled_at: z.string().nullable(),
  created_at: z.string(),
});
export type VaultSubscription = z.infer<typeof SubscriptionSchema>;

const ClockSchema = z.object({
  now: z.iso.datetime({ offset: true }),
  status: z.enum(['ready', 'advancing']),
  charges: z.object({ succeeded: z.number().int(), failed: z.number().int() }).optional(),
});
export type VaultClock = z.infer<typeof ClockSchema>;

/** A jump of the demo's few subscriptions takes seconds; the vault itself waits up to 5 minutes before answering `advancing`. */
const ADVANCE_TIMEOUT_MS = 120_000;

const listOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), has_more: z.boolean() });

/** The vault's subscriptions and sandbox clock, as the shop's server calls them (with the secret key). */
export class VaultSubscriptions {
  constructor(readonly vault: VaultClient) {}

  create(
    subscription: { token: string; amount: number; currency: string; interval: string; interval_count: number; start_at: string; reference: string },
    idempotencyKey: string,
  ): Promise<VaultSubscription> {
    return this.vault.request(SubscriptionSchema, 'POST', '/v1/subscriptions', subscription, idempotencyKey);
  }

  async ofCustomer(customer: string): Promise<VaultSubscription[]> {
    return (await this.vault.request(listOf(SubscriptionSchema), 'GET', `/v1/subscriptions?customer=${encodeURIComponent(customer)}&limit=100`)).data;
  }

  async recent(): Promise<VaultSubscription[]> {
    return (await this.vault.request(listOf(SubscriptionSchema), 'GET', '/v1/subscriptions?limit=100')).data;
  }

  one(id: string): Promise<VaultSubscription> {
    return this.vault.request(SubscriptionSchema, 'GET', `/v1/subscriptions/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<VaultSubscription> {
    return this.vault.request(SubscriptionSchema, 'POST', `/v1/subscriptions/${encodeURIComponent(id)}/cancel`, {}, `cancel-${id}`);
  }

  async payments(id: string): Promise<VaultPayment[]> {
    return (await this.vault.request(listOf(PaymentSchema), 'GET', `/v1/payments?subscription=${encodeURIComponent(id)}&limit=100`)).data;
  }

  clock(): Promise<VaultClock> {
    return this.vault.request(ClockSchema, 'GET', '/v1/sandbox/clock');
  }

  /** Moves the merchant's sandbox clock; answers once every charge due by then has run, so it may take longer than other calls. */
  advanceClock(to: Date, idempotencyKey: string): Promise<VaultClock> {
    return this.vault.request(ClockSchema, 'POST', '/v1/sandbox/clock', { advance_to: to.toISOString() }, idempotencyKey, ADVANCE_TIMEOUT_MS);
  }
}
