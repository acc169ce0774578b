/**
 * The typing rules, as one chunk the fields load after `ready` (see
 * `lazy.ts`): brand detection and marks, the number's spacing, the expiry's
 * format and every field's check. Drawing the empty form needs none of them.
 */
export { brandIcon } from './brand-marks.ts';
export { BRAND_RULES, detectBrand, UNKNOWN_BRAND } from './card-brands.ts';
export { caretAfterDigits, digitsOnly, formatCardNumberInput } from './card-number.ts';
export { formatExpiry, parseExpiry } from './expiry.ts';
export { cvcError, expiryError, nameError, numberError, postalCodeError } from './validation.ts';

export type Rules = typeof import('./rules.ts');
