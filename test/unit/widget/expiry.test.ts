import { describe, expect, it } from 'vitest';
import { formatExpiry, parseExpiry } from '../../../widget/fields/expiry.ts';
import { expiryError } from '../../../widget/fields/validation.ts';

describe('expiry formatting as typed', () => {
  it.each([
    ['a first digit of 0 or 1 waits for the second', '1', false, '1'],
    ['a first digit of 2 to 9 is a month of its own', '4', false, '04 / '],
    ['two digits complete the month and add the separator', '12', false, '12 / '],
    ['deleting back to the month does not put the separator back', '12 /', true, '12'],
    ['four digits read MM / YY', '1230', false, '12 / 30'],
    ['a fifth digit is ignored', '12305', false, '12 / 30'],
    ['a single-digit month with a slash is padded', '1/30', false, '01 / 30'],
    ["autofill's MM/YYYY is shortened to MM / YY", '12/2030', false, '12 / 30'],
  ])('%s', (_name, typed, deleting, shown) => {
    expect(formatExpiry(typed, deleting)).toBe(shown);
  });
});

describe('expiry parsing', () => {
  it('reads MM / YY as a month and a four-digit year', () => {
    expect(parseExpiry('12 / 30')).toEqual({ month: 12, year: 2030 });
  });

  it('reads nothing from an incomplete expiry', () => {
    expect(parseExpiry('12 / 3')).toBeUndefined();
  });
});

describe('expiry validation', () => {
  const now = new Date(2026, 10, 22);

  it.each([
    ['a future expiry is valid', '12 / 30', undefined],
    ['the current month is still valid', '11 / 26', undefined],
    ['last month is in the past', '10 / 26', 'expiry_in_past'],
    ['last year is in the past', '12 / 25', 'expiry_in_past'],
    ['month 13 is invalid', '13 / 30', 'invalid_expiry_month'],
    ['month 00 is invalid', '00 / 30', 'invalid_expiry_month'],
    ['a month without a year is incomplete', '12 / ', 'incomplete_expiry'],
    ['nothing is incomplete', '', 'incomplete_expiry'],
  ])('%s', (_name, expiry, error) => {
    expect(expiryError(expiry, now)).toBe(error);
  });
});
