/** Card number arithmetic: the digits a shopper typed, their spacing, and the Luhn check. */
import { passesLuhn } from '../shared/luhn.ts';
import { detectBrand, UNKNOWN_BRAND } from './card-brands.ts';

export { passesLuhn };

export const digitsOnly = (text: string): string => text.replace(/\D/g, '');

/** `4242424242424242` → `4242 4242 4242 4242` with the brand's gaps (Amex: `3782 822463 10005`). */
export function formatCardNumber(digits: string, gaps: readonly number[]): string {
  let formatted = '';
  for (let i = 0; i < digits.length; i++) formatted += (gaps.includes(i) ? ' ' : '') + digits[i];
  return formatted;
}

/**
 * What the number field shows for what the shopper typed or pasted: digits
 * only, cut at the longest length of the brand they show, spaced for it.
 */
export function formatCardNumberInput(text: string): string {
  const digits = digitsOnly(text);
  const rule = detectBrand(digits) ?? UNKNOWN_BRAND;
  return formatCardNumber(digits.slice(0, Math.max(...rule.lengths)), rule.gaps);
}

/**
 * Where the caret belongs in `formatted` so that it still follows the same
 * digit it followed before reformatting (`digitsBefore` digits to its left).
 */
export function caretAfterDigits(formatted: string, digitsBefore: number): number {
  let position = 0;
  for (let seen = 0; position < formatted.length && seen < digitsBefore; position++) {
    if (/\d/.test(formatted[position]!)) seen++;
  }
  return position;
}
