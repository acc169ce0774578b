import { describe, expect, it } from 'vitest';
import { detectBrand, UNKNOWN_BRAND } from '../../../widget/fields/card-brands.ts';
import { cvcError, nameError, numberError, postalCodeError } from '../../../widget/fields/validation.ts';

const ruleFor = (digits: string) => detectBrand(digits) ?? UNKNOWN_BRAND;

describe('card number validation', () => {
  it.each([
    ['a valid Visa number', '4242424242424242', undefined],
    ['a valid Amex number', '378282246310005', undefined],
    ['a short Visa number is incomplete', '424242424242', 'incomplete_number'],
    ['a Visa number of a length Visa does not issue (17) is incomplete', '42424242424242424', 'incomplete_number'],
    ['a full-length number failing Luhn is invalid', '4242424242424241', 'invalid_number'],
    ['an Amex number failing Luhn is invalid', '378282246310006', 'invalid_number'],
  ])('%s', (_name, digits, error) => {
    expect(numberError(digits, ruleFor(digits))).toBe(error);
  });
});

describe('CVC length by brand', () => {
  it.each([
    ['Amex needs 4 digits', '378282246310005', '1234', undefined],
    ['Amex refuses 3 digits', '378282246310005', '123', 'incomplete_cvc'],
    ['Visa needs 3 digits', '4242424242424242', '123', undefined],
    ['Visa refuses 2 digits', '4242424242424242', '12', 'incomplete_cvc'],
    ['Mastercard refuses 4 digits', '5555555555554444', '1234', 'incomplete_cvc'],
  ])('%s', (_name, number, cvc, error) => {
    expect(cvcError(cvc, [ruleFor(number).cvcLength])).toBe(error);
  });

  it('accepts 3 or 4 digits while the brand is unknown', () => {
    expect([cvcError('123', [3, 4]), cvcError('1234', [3, 4]), cvcError('12', [3, 4])]).toEqual([
      undefined,
      undefined,
      'incomplete_cvc',
    ]);
  });
});

describe('name and postal code', () => {
  it('requires a name that is not only spaces', () => {
    expect([nameError('Ada Lovelace'), nameError('   ')]).toEqual([undefined, 'incomplete_name']);
  });

  it.each([
    ['SW1A 1AA', undefined],
    ['75001', undefined],
    ['K1A 0B1', undefined],
    ['12', 'incomplete_postal_code'],
    ['12345678901', 'incomplete_postal_code'],
    ['<script>', 'incomplete_postal_code'],
  ])('judges the postal code %s', (postalCode, error) => {
    expect(postalCodeError(postalCode)).toBe(error);
  });
});

describe('a card number typed into the name or postal code', () => {
  it.each([
    ['4242424242424242', 'as typed in the number field'],
    ['4242 4242 4242 4242', 'spaced'],
    ['4242-4242-4242-4242', 'dashed'],
    ['Ada 4242 4242 4242 4242', 'after a name'],
    ['Ada4242424242424242', 'glued to a name'],
    ['3782 822463 10005', 'with Amex spacing (15 digits)'],
    ['4222222222222', 'of 13 digits'],
    ['6217000000000000004', 'of 19 digits'],
  ])('is refused in both (%s, %s)', (text) => {
    expect([nameError(text), postalCodeError(text)]).toEqual(['card_number_not_allowed', 'card_number_not_allowed']);
  });

  it.each([
    ['4242 4242 4242 4241', 'a run that fails the Luhn check'],
    ['424242424242', 'a run of 12 digits'],
    ['Flat 12, 4 Privet Drive', 'a few short numbers'],
  ])('is not what %s is (%s)', (text) => {
    expect(nameError(text)).toBeUndefined();
    expect(postalCodeError(text)).not.toBe('card_number_not_allowed');
  });
});
