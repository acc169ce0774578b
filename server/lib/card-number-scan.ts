import { BRAND_PREFIX_RULES, LONGER_RULES_BY_PREFIX4, type PrefixRule } from './brand-prefixes.ts';

/**
 * Finds card numbers written into free text, in time linear in the text.
 *
 * A candidate is 13–19 digits in a row that pass Luhn and start with a card
 * brand's prefix (credit-card-type's table, the one the vault names brands
 * with). Digits may be separated by short gaps of spaces, dashes, dots,
 * underscores or invisible formatting characters, the ways a number is
 * typed or disguised, and any Unicode decimal digit counts by its value
 * (full-width and Arabic-Indic digits included). A candidate inside a
 * longer run of digits counts too: a card number with digits glued to it is
 * still a card number in the clear. A run of digits glued to a letter (no
 * separator between them) is part of a word or an identifier and is not
 * looked at, as a word boundary works in the usual PAN-discovery patterns:
 * hex ids and UUIDs are made of such runs, and about 1 random UUID in 250
 * would otherwise hold a "card number".
 *
 * Every character is looked at once; each digit starts at most seven
 * windows, and each window costs O(1): Luhn sums come from prefix sums over
 * the run, and the brand from a table of 4-digit prefixes built at start-up.
 * No regular expression runs over the text.
 */

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;
/** Separator characters allowed between two digits of one number ("4242 - 4242" has three). */
const MAX_GAP = 3;

const OTHER = 255;
const SEPARATOR = 10;
const LETTER = 11;

/**
 * Class of every BMP code point: its digit value (0–9), SEPARATOR, LETTER
 * or OTHER. Unicode encodes every decimal digit (`\p{Nd}`) in runs of ten
 * from 0 to 9.
 */
const BMP_CLASS = (() => {
  const classes = new Uint8Array(0x10000).fill(OTHER);
  const separator = /^[\s\p{Pd}\p{Cf}._]$/u;
  const digit = /^\p{Nd}$/u;
  const letter = /^\p{L}$/u;
  for (let cp = 0; cp < 0x10000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const char = String.fromCharCode(cp);
    if (digit.test(char)) {
      classes[cp] = classes[cp - 1]! < 9 ? classes[cp - 1]! + 1 : 0;
    } else if (separator.test(char)) {
      classes[cp] = SEPARATOR;
    } else if (letter.test(char)) {
      classes[cp] = LETTER;
    }
  }
  return classes;
})();

/** Digits outside the BMP (mathematical, Adlam, …): the first code point of each run of ten. */
const ASTRAL_DIGIT_ZEROS = (() => {
  const zeros: number[] = [];
  const digit = /^\p{Nd}$/u;
  let inRun = 0;
  for (let cp = 0x10000; cp < 0x20000; cp++) {
    if (digit.test(String.fromCodePoint(cp))) {
      if (inRun % 10 === 0) zeros.push(cp);
      inRun++;
    } else {
      inRun = 0;
    }
  }
  return zeros;
})();

function classOf(cp: number): number {
  if (cp < 0x10000) return BMP_CLASS[cp]!;
  for (const zero of ASTRAL_DIGIT_ZEROS) if (cp >= zero && cp < zero + 10) return cp - zero;
  // Astral format characters (tags) are invisible: they separate like a zero-width space.
  return cp >= 0xe0000 && cp <= 0xe007f ? SEPARATOR : OTHER;
}

const NO_BRAND = 0;
const BRAND = 1;
const LONGER_PREFIX = 2;

/**
 * For each 4-digit prefix: no brand can match, a brand matches, or it
 * depends on digits 5–8 (then `LONGER_RULES` has the few rules to try).
 */
const { PREFIX4, LONGER_RULES } = (() => {
  const table = new Uint8Array(10_000);
  const longer = new Map<number, readonly PrefixRule[]>();
  for (const rule of BRAND_PREFIX_RULES.filter((r) => r.length <= 4)) {
    const scale = 10 ** (4 - rule.length);
    for (let prefix = rule.min * scale; prefix < (rule.max + 1) * scale; prefix++) table[prefix] = BRAND;
  }
  for (const [prefix, rules] of LONGER_RULES_BY_PREFIX4) {
    if (table[prefix] === BRAND) continue;
    table[prefix] = LONGER_PREFIX;
    longer.set(prefix, rules);
  }
  return { PREFIX4: table, LONGER_RULES: longer };
})();

/** Whether digits[start…] (at least 8 of them) begin like a card of a known brand. */
function hasBrandPrefix(digits: Uint8Array, start: number): boolean {
  const prefix = digits[start]! * 1000 + digits[start + 1]! * 100 + digits[start + 2]! * 10 + digits[start + 3]!;
  const kind = PREFIX4[prefix];
  if (kind !== LONGER_PREFIX) return kind === BRAND;
  for (const rule of LONGER_RULES.get(prefix)!) {
    let value = prefix;
    for (let i = 4; i < rule.length; i++) value = value * 10 + digits[start + i]!;
    if (value >= rule.min && value <= rule.max) return true;
  }
  return false;
}

/** The same test credit-card-type makes on a whole number (`detectBrand(number).brand !== 'unknown'`), for numbers of 8+ digits. */
export function hasKnownBrandPrefix(number: string): boolean {
  if (!/^\d{8,}$/.test(number)) throw new TypeError('hasKnownBrandPrefix needs at least 8 ASCII digits');
  return hasBrandPrefix(Uint8Array.from(number, (d) => d.charCodeAt(0) - 48), 0);
}

const doubled = (digit: number) => (digit * 2 > 9 ? digit * 2 - 9 : digit * 2);

export interface CardNumberScan {
  found: boolean;
  /** Work done, for tests that prove the scan linear: windows whose Luhn sum was taken. */
  windows: number;
  /** Work done: start positions whose brand prefix was looked up. */
  prefixes: number;
}

/** Scans `text` for an embedded card number (see the module comment), reporting the work it took. */
export function scanForCardNumber(text: string): CardNumberScan {
  const scan: CardNumberScan = { found: false, windows: 0, prefixes: 0 };
  // The current run of digits, and two Luhn prefix sums over it: `sums[p][i]` adds digits[0…i-1], doubling those at index parity p.
  const digits = new Uint8Array(text.length);
  const sums = [new Int32Array(text.length + 1), new Int32Array(text.length + 1)] as const;
  let length = 0;
  let gap = 0;
  // Whether the current run touches a letter, and whether the character before it was one.
  let glued = false;
  let afterLetter = false;

  const endRun = (): boolean => {
    const n = length;
    const skip = glued;
    length = 0;
    gap = 0;
    glued = false;
    if (skip) return false;
    for (let start = 0; start + MIN_DIGITS <= n; start++) {
      scan.prefixes++;
      if (!hasBrandPrefix(digits, start)) continue;
      for (let end = start + MIN_DIGITS; end <= Math.min(n, start + MAX_DIGITS); end++) {
        scan.windows++;
        // Luhn doubles every second digit counting from the last one (index end-1): those at the parity of `end`.
        const sum = sums[end % 2]![end]! - sums[end % 2]![start]!;
        if (sum % 10 === 0) return true;
      }
    }
    return false;
  };

  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      cp = text.codePointAt(i)!;
      if (cp > 0xffff) i++;
    }
    const kind = classOf(cp);
    if (kind <= 9) {
      if (length === 0) glued = afterLetter;
      digits[length] = kind;
      sums[0][length + 1] = sums[0][length]! + (length % 2 === 0 ? doubled(kind) : kind);
      sums[1][length + 1] = sums[1][length]! + (length % 2 === 1 ? doubled(kind) : kind);
      length++;
      gap = 0;
    } else if (kind === SEPARATOR && length > 0 && gap < MAX_GAP) {
      gap++;
    } else if (length > 0) {
      if (kind === LETTER && gap === 0) glued = true;
      if (endRun()) {
        scan.found = true;
        return scan;
      }
    }
    afterLetter = kind === LETTER;
  }
  scan.found = length > 0 && endRun();
  return scan;
}

/** Whether `text` holds something that is plausibly a card number (see the module comment). */
export function containsCardNumber(text: string): boolean {
  return scanForCardNumber(text).found;
}
