/**
 * Whether each field holds something the vault will accept, as the error
 * code to show the shopper (`undefined`: nothing to say). The vault checks
 * again; these rules mirror its own (api.md, "Card encryption").
 */
import type { FieldErrorCode } from '../shared/constants.ts';
import type { BrandRule } from './card-brands.ts';
import { digitsOnly, passesLuhn } from './card-number.ts';
import { parseExpiry } from './expiry.ts';

export function numberError(digits: string, rule: Pick<BrandRule, 'lengths'>): FieldErrorCode | undefined {
  if (!rule.lengths.includes(digits.length)) {
    return digits.length < Math.max(...rule.lengths) ? 'incomplete_number' : 'invalid_number';
  }
  return passesLuhn(digits) ? undefined : 'invalid_number';
}

/** A card is valid through the last day of its expiry month. */
export function expiryError(formatted: string, now = new Date()): FieldErrorCode | undefined {
  const expiry = parseExpiry(formatted);
  if (!expiry) return 'incomplete_expiry';
  if (expiry.month < 1 || expiry.month > 12) return 'invalid_expiry_month';
  return expiry.year * 12 + expiry.month < now.getFullYear() * 12 + now.getMonth() + 1 ? 'expiry_in_past' : undefined;
}

/** `lengths`: what the brand allows; both 3 and 4 while the brand is unknown. */
export function cvcError(cvc: string, lengths: readonly number[]): FieldErrorCode | undefined {
  return lengths.includes(cvc.length) ? undefined : 'incomplete_cvc';
}

/**
 * Whether free text holds a card number: 13 to 19 digits, spaced or dashed
 * as typed, that pass the Luhn check. The vault refuses such a name or
 * postal code too (`card_number_not_allowed`); finding it here keeps it
 * from leaving the fields at all.
 */
export const holdsCardNumber = (text: string): boolean =>
  (text.match(/\d(?:[ -]?\d){12,18}/g) ?? []).some((run) => passesLuhn(digitsOnly(run)));

export function nameError(name: string): FieldErrorCode | undefined {
  return holdsCardNumber(name) ? 'card_number_not_allowed' : name.trim() ? undefined : 'incomplete_name';
}

/** Postal codes worldwide are 3 to 10 letters, digits, spaces or hyphens. */
export function postalCodeError(postalCode: string): FieldErrorCode | undefined {
  if (holdsCardNumber(postalCode)) return 'card_number_not_allowed';
  return /^[\p{L}\d][\p{L}\d -]{1,8}[\p{L}\d]$/u.test(postalCode.trim()) ? undefined : 'incomplete_postal_code';
}
