/**
 * What the shop sells by subscription: a plan is bought through the normal
 * checkout (its card always saved), and the vault charges it after that on
 * its calendar. Like the catalog's prices, plans live on the shop's server.
 */
export interface Plan {
  id: string;
  name: string;
  description: string;
  /** Charged each interval, in minor units. */
  amount: number;
  interval: 'day' | 'week' | 'month' | 'year';
  intervalCount: number;
  colour: string;
}

export const PLANS: readonly Plan[] = [
  {
    id: 'coffee-monthly',
    name: 'Studio coffee, every month',
    description: 'A kilo of freshly roasted beans for long days at the mosaic table, delivered monthly.',
    amount: 1800,
    interval: 'month',
    intervalCount: 1,
    colour: '#6f4e37',
  },
];

export const planById = (id: string): Plan | undefined => PLANS.find((plan) => plan.id === id);

/**
 * When the vault's first charge is due: one interval after the checkout
 * payment, which paid the first period. A month end clamps (Jan 31 → Feb
 * 28), as the vault's own calendar does for every period after it.
 */
export function secondPeriodStart(paidAt: Date, plan: Plan): Date {
  const next = new Date(paidAt);
  if (plan.interval === 'day' || plan.interval === 'week') {
    next.setUTCDate(next.getUTCDate() + plan.intervalCount * (plan.interval === 'week' ? 7 : 1));
    return next;
  }
  const months = plan.intervalCount * (plan.interval === 'year' ? 12 : 1);
  const day = next.getUTCDate();
  next.setUTCDate(1);
  next.setUTCMonth(next.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(next.getUTCFullYear(), next.getUTCMonth() + 1, 0)).getUTCDate();
  next.setUTCDate(Math.min(day, lastDay));
  return next;
}
