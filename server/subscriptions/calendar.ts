/**
 * A subscription's calendar, in UTC. Period n is due at the start date plus
 * n × interval_count units, always counted from the start date (never from
 * the previous charge), so a month end that had to be clamped comes back:
 * Jan 31 → Feb 28 (Feb 29 in a leap year) → Mar 31 → Apr 30. A yearly
 * subscription started on Feb 29 is charged on Feb 28 in common years and
 * on Feb 29 again in leap years. The time of day is the start date's.
 */

export const INTERVAL_UNITS = ['day', 'week', 'month', 'year'] as const;
export type IntervalUnit = (typeof INTERVAL_UNITS)[number];

/** The longest interval a subscription may have (as Stripe's: one year). */
export const MAX_INTERVAL_COUNT: Readonly<Record<IntervalUnit, number>> = { day: 365, week: 52, month: 12, year: 1 };

const DAY_MS = 86_400_000;

export interface Schedule {
  startAt: Date;
  unit: IntervalUnit;
  count: number;
}

/** When period `n` (0 = the first) is due. */
export function periodStart(schedule: Schedule, n: number): Date {
  const { startAt, unit, count } = schedule;
  if (unit === 'day' || unit === 'week') return new Date(startAt.getTime() + n * count * (unit === 'week' ? 7 : 1) * DAY_MS);
  const months = n * count * (unit === 'year' ? 12 : 1);
  const monthIndex = startAt.getUTCMonth() + months;
  const year = startAt.getUTCFullYear() + Math.floor(monthIndex / 12);
  const month = monthIndex % 12;
  const day = Math.min(startAt.getUTCDate(), daysInMonth(year, month));
  return new Date(
    Date.UTC(year, month, day, startAt.getUTCHours(), startAt.getUTCMinutes(), startAt.getUTCSeconds(), startAt.getUTCMilliseconds()),
  );
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/**
 * Dunning: a declined charge is tried again 1, 3 and 5 days after the try
 * before it (Stripe's "days after the previous attempt"), so on days 1, 4
 * and 9 after the period's date; the fourth decline makes the subscription
 * `unpaid`.
 */
export const RETRY_AFTER_DAYS = [1, 3, 5] as const;

/** When the try after a declined try number `attempt` (0 = on the period's date) is due, or undefined when that was the last. */
export function retryAt(triedAt: Date, attempt: number): Date | undefined {
  const days = RETRY_AFTER_DAYS[attempt];
  return days === undefined ? undefined : new Date(triedAt.getTime() + days * DAY_MS);
}
