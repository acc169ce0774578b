/**
 * What must never reach the merchant page (widget spec, messaging rule 5) or
 * the shop's backend: a test card's number, plain or as typed with spaces,
 * its CVC (both found as every leak check finds them: test/support/leaks.ts),
 * or its first six digits (the BIN).
 */
import { CARDS } from '../../support/cards.ts';
import { cardDataInValue, ID_CHARACTER, SECRET_NUMBERS } from '../../support/leaks.ts';

/**
 * A BIN where a run of digits starts, and not inside an id or base64 text.
 * Inside a longer run (an epoch timestamp, say) six given digits turn up by
 * chance, and so they do after a letter of a random id: CI once flagged
 * "BIN 555555" in the dashboard's list of webhook deliveries, whose only
 * runs of digits are in ISO times and in random ids (a delivery's `whd_` id
 * is 32 hex digits). A leaked card number is still found whole by
 * `cardDataInValue` wherever it sits. The bounds are a CVC's
 * (`ID_CHARACTER`, test/support/leaks.ts).
 */
const BINS = [...new Set(Object.values(CARDS).map((card) => card.number.slice(0, 6)))].map((bin) => ({
  bin,
  pattern: new RegExp(`(?<!${ID_CHARACTER})${bin}`),
}));

function binIn(text: string): string | undefined {
  return BINS.find(({ pattern }) => pattern.test(text))?.bin;
}

/** A card number or BIN sent as a JSON number. */
function inNumber(value: number): string | undefined {
  const digits = String(value);
  if (SECRET_NUMBERS.includes(digits)) return `card number ${digits.slice(0, 4)}…`;
  return BINS.some(({ bin }) => bin === digits) ? `BIN ${digits}` : undefined;
}

function binOrNumberIn(value: unknown): string | undefined {
  if (typeof value === 'string') {
    const bin = binIn(value);
    return bin === undefined ? undefined : `BIN ${bin}`;
  }
  if (typeof value === 'number') return inNumber(value);
  const children = Array.isArray(value) ? value : value !== null && typeof value === 'object' ? Object.entries(value).flat() : [];
  for (const child of children) {
    const found = binOrNumberIn(child);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The first card datum found anywhere in a JSON value (keys, strings, numbers), described without repeating it. */
export function cardDataIn(value: unknown): string | undefined {
  return cardDataInValue(value) ?? binOrNumberIn(value);
}
