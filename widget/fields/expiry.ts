/** The expiry field: `MM / YY` as typed, and the month and year it stands for. */
import { digitsOnly } from './card-number.ts';

export interface Expiry {
  month: number;
  /** Four digits, as the vault expects. */
  year: number;
}

/**
 * Formats expiry input as `MM / YY`. A leading 2–9 is a month of its own
 * (`4` → `04 / `); autofill's `MM/YYYY` is shortened to `MM / YY`. While the
 * shopper deletes, the separator is not put back, so backspace is not stuck.
 */
export function formatExpiry(input: string, deleting = false): string {
  let digits = digitsOnly(input.replace(/^(\d)\D/, '0$1'));
  if (digits.length === 6) digits = digits.slice(0, 2) + digits.slice(4);
  if (/^[2-9]/.test(digits)) digits = `0${digits}`;
  digits = digits.slice(0, 4);
  return digits.length > 2 || (digits.length === 2 && !deleting) ? `${digits.slice(0, 2)} / ${digits.slice(2)}` : digits;
}

/** The month and four-digit year of a complete `MM / YY`, whether or not it is a valid date. */
export function parseExpiry(formatted: string): Expiry | undefined {
  const digits = digitsOnly(formatted);
  return digits.length === 4 ? { month: +digits.slice(0, 2), year: 2000 + +digits.slice(2) } : undefined;
}
