/**
 * What must never reach the merchant page (widget spec, messaging rule 5):
 * a test card's number, plain or as typed with spaces, its first six digits
 * (the BIN) or its CVC.
 */
import { CARDS } from '../../support/cards.ts';
import { SECRET_CVCS, SECRET_NUMBERS } from '../../support/leaks.ts';

const spaced = (number: string) => number.replace(/(\d{4})(?=\d)/g, '$1 ');

const NUMBERS = [...new Set([...SECRET_NUMBERS, ...SECRET_NUMBERS.map(spaced)])];
const BINS = [...new Set(Object.values(CARDS).map((card) => card.number.slice(0, 6)))];
/**
 * A CVC only as a word of its own. The word characters include base64url's
 * `-` and `_`: the CVC handle is a JWE, and three digits inside base64url are
 * chance, not a CVC.
 */
const CVC_WORDS = SECRET_CVCS.map((cvc) => ({ cvc, pattern: new RegExp(`(?<![0-9A-Za-z_-])${cvc}(?![0-9A-Za-z_-])`) }));

/** Numbers that describe layout, not the card: a frame 516 px high is not a CVC. */
const LAYOUT_KEYS = new Set(['height']);

function inText(text: string): string | undefined {
  const number = NUMBERS.find((n) => text.includes(n));
  if (number !== undefined) return `card number ${number.slice(0, 4)}…`;
  const bin = BINS.find((b) => text.includes(b));
  if (bin !== undefined) return `BIN ${bin}`;
  const cvc = CVC_WORDS.find(({ pattern }) => pattern.test(text));
  return cvc === undefined ? undefined : `CVC ${cvc.cvc}`;
}

function inNumber(value: number, key: string | undefined): string | undefined {
  if (key !== undefined && LAYOUT_KEYS.has(key)) return undefined;
  const digits = String(value);
  if (NUMBERS.includes(digits)) return `card number ${digits.slice(0, 4)}…`;
  if (BINS.includes(digits)) return `BIN ${digits}`;
  return SECRET_CVCS.includes(digits) ? `CVC ${digits} (as a number under "${key ?? ''}")` : undefined;
}

/** The first card datum found anywhere in a JSON value (keys, strings, numbers), described without repeating it. */
export function cardDataIn(value: unknown, key?: string): string | undefined {
  if (typeof value === 'string') return inText(value);
  if (typeof value === 'number') return inNumber(value, key);
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = cardDataIn(item, key);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [name, inner] of Object.entries(value)) {
      const found = inText(name) ?? cardDataIn(inner, name);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
