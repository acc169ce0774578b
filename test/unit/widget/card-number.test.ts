import { describe, expect, it } from 'vitest';
import { caretAfterDigits, formatCardNumberInput, passesLuhn } from '../../../widget/fields/card-number.ts';

describe('card number formatting as typed', () => {
  it.each([
    ['a Visa number is spaced 4-4-4-4', '4242424242424242', '4242 4242 4242 4242'],
    ['an Amex number is spaced 4-6-5', '378282246310005', '3782 822463 10005'],
    ['a Diners number is spaced 4-6-4', '30569309025904', '3056 930902 5904'],
    ['a partial number is spaced as far as it goes', '424242', '4242 42'],
    ['a pasted spaced number keeps its digits and spacing', '4242 4242 4242 4242', '4242 4242 4242 4242'],
    ['a pasted number with dashes is respaced', '5555-5555-5555-4444', '5555 5555 5555 4444'],
    ['letters and symbols are dropped', '4242a4242!4242 4242', '4242 4242 4242 4242'],
    ['an Amex number stops at 15 digits', '3782822463100059999', '3782 822463 10005'],
    ['a Mastercard number stops at 16 digits', '55555555555544449', '5555 5555 5555 4444'],
    ['a Visa number may run to 19 digits', '42424242424242424242', '4242 4242 4242 4242424'],
    ['an unrecognised number stops at 19 digits', '99999999999999999999', '9999 9999 9999 9999999'],
  ])('%s', (_name, typed, shown) => {
    expect(formatCardNumberInput(typed)).toBe(shown);
  });
});

describe('Luhn check', () => {
  it.each(['4242424242424242', '5555555555554444', '378282246310005', '6011111111111117', '30569309025904'])(
    'accepts the valid number %s',
    (digits) => {
      expect(passesLuhn(digits)).toBe(true);
    },
  );

  it.each(['4242424242424241', '5555555555554445', '378282246310006', '1234567812345678'])('rejects %s', (digits) => {
    expect(passesLuhn(digits)).toBe(false);
  });
});

describe('caret placement after reformatting', () => {
  it.each([
    ['stays after the same digit when a space is inserted before it', '4242 4', 5, 6],
    ['sits at the start with no digits before it', '4242 4242', 0, 0],
    ['follows the fourth digit to just before the gap', '4242 4242', 4, 4],
    ['follows the eighth digit past the gap', '4242 4242', 8, 9],
  ])('%s', (_name, formatted, digitsBefore, caret) => {
    expect(caretAfterDigits(formatted, digitsBefore)).toBe(caret);
  });
});
