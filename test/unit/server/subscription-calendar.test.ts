import { describe, expect, it } from 'vitest';
import { periodStart, retryAt, type Schedule } from '../../../server/subscriptions/calendar.ts';

const dates = (schedule: Schedule, periods: number) => Array.from({ length: periods }, (_, n) => periodStart(schedule, n).toISOString());
const at = (text: string) => new Date(text);

describe('subscription calendar', () => {
  it('clamps a monthly date to the month end and comes back: Jan 31 → Feb 28 → Mar 31 → Apr 30', () => {
    expect(dates({ startAt: at('2027-01-31T09:30:00Z'), unit: 'month', count: 1 }, 5)).toEqual([
      '2027-01-31T09:30:00.000Z',
      '2027-02-28T09:30:00.000Z',
      '2027-03-31T09:30:00.000Z',
      '2027-04-30T09:30:00.000Z',
      '2027-05-31T09:30:00.000Z',
    ]);
  });

  it('gives February its 29th in a leap year', () => {
    expect(dates({ startAt: at('2028-01-30T00:00:00Z'), unit: 'month', count: 1 }, 3)).toEqual([
      '2028-01-30T00:00:00.000Z',
      '2028-02-29T00:00:00.000Z',
      '2028-03-30T00:00:00.000Z',
    ]);
  });

  it('charges a yearly Feb 29 start on Feb 28 in common years and Feb 29 in leap years', () => {
    expect(dates({ startAt: at('2028-02-29T12:00:00Z'), unit: 'year', count: 1 }, 5)).toEqual([
      '2028-02-29T12:00:00.000Z',
      '2029-02-28T12:00:00.000Z',
      '2030-02-28T12:00:00.000Z',
      '2031-02-28T12:00:00.000Z',
      '2032-02-29T12:00:00.000Z',
    ]);
  });

  it.each([
    ['day', 3, ['2027-12-30', '2028-01-02', '2028-01-05']],
    ['week', 2, ['2027-12-30', '2028-01-13', '2028-01-27']],
    ['month', 3, ['2027-12-30', '2028-03-30', '2028-06-30']],
    ['month', 12, ['2027-12-30', '2028-12-30', '2029-12-30']],
  ] as const)('counts %s × %i from the start date across a year end', (unit, count, expected) => {
    expect(dates({ startAt: at('2027-12-30T00:00:00Z'), unit, count }, 3).map((d) => d.slice(0, 10))).toEqual(expected);
  });

  it('clamps every third month from Nov 30 to Feb 28 and back to May 30', () => {
    expect(dates({ startAt: at('2026-11-30T00:00:00Z'), unit: 'month', count: 3 }, 3).map((d) => d.slice(0, 10))).toEqual(['2026-11-30', '2027-02-28', '2027-05-30']);
  });

  it('retries 1, 3 and 5 days after the try before, then stops', () => {
    const first = at('2027-01-10T06:00:00Z');
    const second = retryAt(first, 0)!;
    const third = retryAt(second, 1)!;
    const fourth = retryAt(third, 2)!;
    expect([second, third, fourth].map((d) => d.toISOString())).toEqual(['2027-01-11T06:00:00.000Z', '2027-01-14T06:00:00.000Z', '2027-01-19T06:00:00.000Z']);
    expect(retryAt(fourth, 3)).toBeUndefined();
  });
});
