/**
 * Brand detection for the fields, as a compact copy of the credit-card-type
 * rules for the brands the fields draw an icon for. The library itself is too
 * big for the fields' size budget; the vault runs it and its answer (the
 * token's `card.brand`) is authoritative. A unit test keeps this table in step
 * with the library. Elo, Hiper, Hipercard and Verve are left out: they share
 * the default spacing and CVC length, so only their icon is affected.
 */
import type { CardBrand } from '../shared/brands.ts';

/** An issuer prefix (`4`) or an inclusive range of prefixes of equal length (`[51, 55]`). */
type Prefix = number | [number, number];

export interface BrandRule {
  brand: CardBrand;
  prefixes: Prefix[];
  /** Valid card number lengths, shortest first. */
  lengths: number[];
  /** Digit positions after which the number is displayed with a space. */
  gaps: number[];
  cvcLength: number;
}

const rule = (
  brand: CardBrand,
  prefixes: Prefix[],
  lengths: number[],
  gaps = [4, 8, 12],
  cvcLength = 3,
): BrandRule => ({ brand, prefixes, lengths, gaps, cvcLength });

/** In credit-card-type's test order, which breaks ties between equally specific prefixes. */
export const BRAND_RULES: readonly BrandRule[] = [
  rule('visa', [4], [16, 18, 19]),
  rule('mastercard', [[51, 55], [2221, 2229], [223, 229], [23, 26], [270, 271], 2720], [16]),
  rule('american-express', [34, 37], [15], [4, 10], 4),
  rule('diners-club', [[300, 305], 36, 38, 39], [14, 16, 19], [4, 10]),
  rule('discover', [6011, [644, 649], 65], [16, 19]),
  rule('jcb', [2131, 1800, [3528, 3589]], [16, 17, 18, 19]),
  rule(
    'unionpay',
    [
      620, [62100, 62182], [62184, 62187], [62185, 62197], [62200, 62205], [622010, 622999], 622018,
      [62207, 62209], [623, 626], 6270, 6272, 6276, [627700, 627779], [627781, 627799], [6282, 6289],
      6291, 6292, 810, [8110, 8171],
    ],
    [14, 15, 16, 17, 18, 19],
  ),
  rule('maestro', [493698, [500000, 504174], [504176, 506698], [506779, 508999], [56, 59], 63, 67, 6], [12, 13, 14, 15, 16, 17, 18, 19]),
  rule('mir', [[2200, 2204]], [16, 17, 18, 19]),
];

/** What applies while the brand is still unknown. */
export const UNKNOWN_BRAND: Omit<BrandRule, 'brand'> = { prefixes: [], lengths: [12, 13, 14, 15, 16, 17, 18, 19], gaps: [4, 8, 12], cvcLength: 3 };

/** How many leading digits `prefix` pins down if `digits` matches it, else -1 (0: matches, but `digits` is shorter than the prefix). */
function matchStrength(digits: string, prefix: Prefix): number {
  const [low, high] = typeof prefix === 'number' ? [`${prefix}`, `${prefix}`] : [`${prefix[0]}`, `${prefix[1]}`];
  const head = digits.slice(0, low.length);
  const matches = +head >= +low.slice(0, head.length) && +head <= +high.slice(0, head.length);
  return !matches ? -1 : digits.length >= low.length ? low.length : 0;
}

/**
 * The brand of a (possibly partial) card number, or `undefined` while it is
 * ambiguous — the answer credit-card-type gives: each brand competes with its
 * first matching prefix; once the number is as long as every competing
 * prefix, the longest prefix wins (the first brand on a tie), and before that
 * only a sole candidate is an answer.
 */
export function detectBrand(digits: string): BrandRule | undefined {
  if (!digits) return undefined;
  let best: BrandRule | undefined;
  let bestStrength = 0;
  let candidates = 0;
  let undecided = false;
  for (const candidate of BRAND_RULES) {
    for (const prefix of candidate.prefixes) {
      const strength = matchStrength(digits, prefix);
      if (strength < 0) continue;
      candidates++;
      undecided ||= strength === 0;
      if (strength > bestStrength || !best) [best, bestStrength] = [candidate, strength];
      break;
    }
  }
  return undecided && candidates > 1 ? undefined : best;
}
