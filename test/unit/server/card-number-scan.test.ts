import { createHash } from 'node:crypto';
import creditCardType from 'credit-card-type';
import { describe, expect, it } from 'vitest';
import { containsCardNumber, hasKnownBrandPrefix, scanForCardNumber } from '../../../server/lib/card-number-scan.ts';
import { passesLuhn } from '../../../widget/shared/luhn.ts';

describe('the card-number scan of free text', () => {
  it.each([
    ['a plain number', '5555555555554444'],
    ['a spaced number', '4242 4242 4242 4242'],
    ['a dashed number inside words', 'Ada 5555-5555-5555-4444 Lovelace'],
    ['an American Express number, 4-6-5', '3782 822463 10005'],
    ['a number with spaced dashes', '5555 - 5555 - 5555 - 4444'],
    ['a number with dots', '4242.4242.4242.4242'],
    ['a number with underscores', 'order_4242_4242_4242_4242'],
    ['a number with no-break spaces', '5555\u00a05555\u00a05555\u00a04444'],
    ['a number with zero-width spaces', '5555\u200b5555\u200b5555\u200b4444'],
    ['a number with soft hyphens', '5555\u00ad5555\u00ad5555\u00ad4444'],
    ['full-width digits', '５５５５ ５５５５ ５５５５ ４４４４'],
    ['Arabic-Indic digits', '٥٥٥٥٥٥٥٥٥٥٥٥٤٤٤٤'],
    ['Devanagari digits', '४२४२४२४२४२४२४२४२'],
    ['mathematical bold digits (outside the BMP)', '𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟒𝟒𝟒𝟒'],
    ['a number with digits glued to both ends', '1255555555555544449'],
    ['a number after a long run of zeros', `${'0'.repeat(5000)}4242424242424242`],
    ['a 13-digit Visa', '4222222222222'],
    ['a 19-digit number', '6011000990139424009'],
  ])('finds %s', (_name, text) => {
    expect(containsCardNumber(text)).toBe(true);
  });

  it.each([
    ['a name', 'Ada Lovelace'],
    ['a customer id with digits', 'cus_42 (account 2024-11)'],
    ['an order reference with a date', 'order 2024-11-22 #1001 (12 items)'],
    ['12 digits (too short to be a card)', '424242424242'],
    ['digits with no brand prefix', '0000000000000000000'],
    ['13+ digits broken by a letter', '4242 4242 x 4242 4242'],
    ['digits too far apart (four spaces)', '5555    5555    5555    4444'],
    ['a phone number', '+44 20 7946 0958'],
    // Each holds 13+ digits that pass Luhn with a brand prefix, glued to a letter: part of an identifier.
    ['a UUID', '5b2ffc27-6fd1-456e-b552-955294457574'],
    ['another UUID', '5c1d034a-3933-4679-8426-3512e81d23eb'],
    ['digits glued to a letter', 'cus4242424242424242'],
    ['an empty string', ''],
  ])('leaves %s alone', (_name, text) => {
    expect(containsCardNumber(text)).toBe(false);
  });

  it('takes fewer than 1 random UUID in 1,000 (v4, as idempotency keys and ids often are) for a card number', () => {
    // Deterministic "random" UUIDs: hex digits from SHA-256 of a counter, with the version and variant set.
    const uuid = (i: number) => {
      const hex = createHash('sha256').update(String(i)).digest('hex');
      const variant = ((parseInt(hex[16]!, 16) & 3) | 8).toString(16);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    };
    const uuids = Array.from({ length: 20_000 }, (_, i) => uuid(i));
    expect(uuids.every((u) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u))).toBe(true);
    expect(uuids.filter(containsCardNumber).length).toBeLessThan(20);
  });

  it('decides brands exactly as credit-card-type does on a whole number', () => {
    const numbers: string[] = [];
    // Every 4-digit prefix with (seeded) pseudo-random digits after it, and the edges of every brand range at 8 digits.
    let seed = 7;
    const randomDigits = (count: number) =>
      Array.from({ length: count }, () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return String(seed % 10);
      }).join('');
    for (let prefix = 0; prefix < 10_000; prefix++) numbers.push(`${String(prefix).padStart(4, '0')}${randomDigits(12)}`);
    for (const type of Object.values(creditCardType.types)) {
      for (const pattern of creditCardType.getTypeInfo(type).patterns) {
        for (const bound of Array.isArray(pattern) ? pattern : [pattern]) {
          const eight = Number(String(bound).padEnd(8, '0'));
          for (const edge of [eight - 1, eight, eight + 1, Number(String(bound).padEnd(8, '9')), Number(String(bound).padEnd(8, '9')) + 1]) {
            numbers.push(`${String(edge).padStart(8, '0')}00000000`);
          }
        }
      }
    }
    const disagreements = numbers.filter((number) => hasKnownBrandPrefix(number) !== creditCardType(number).length > 0);
    expect(disagreements).toEqual([]);
  });

  /**
   * The work is counted, not timed: windows whose Luhn sum was taken and
   * start positions whose brand was looked up, per character of text.
   */
  describe('does work linear in the length of the text', () => {
    const workPerCharacter = (text: string) => {
      const scan = scanForCardNumber(text);
      return { found: scan.found, windows: scan.windows / text.length, prefixes: scan.prefixes / text.length };
    };

    it.each([
      // Every start is a brand (Mastercard 55…) and no window of any length passes Luhn: the most windows there can be.
      ['fives, the worst case', (n: number) => '5'.repeat(n)],
      ['zeros', (n: number) => '0'.repeat(n)],
      ['spaced ones', (n: number) => '1 '.repeat(n / 2)],
      ['full-width fives', (n: number) => '５'.repeat(n)],
    ])('%s: at most 7 windows and 1 brand look-up per character, the same at 64 KiB as at 1 KiB', (_name, make) => {
      const small = workPerCharacter(make(1024));
      const large = workPerCharacter(make(64 * 1024));
      expect(large.found).toBe(false);
      expect(large.windows).toBeLessThanOrEqual(7);
      expect(large.prefixes).toBeLessThanOrEqual(1);
      // The 1 KiB text's last 18 characters start fewer windows: that edge is all that differs.
      expect(large.windows).toBeCloseTo(small.windows, 0);
      expect(large.prefixes).toBeCloseTo(small.prefixes, 1);
    });

    it('stops at the first card number: 64 KiB of 4242… costs no more than 1 KiB of it', () => {
      const fours = (n: number) => '4242'.repeat(n / 4);
      const small = scanForCardNumber(fours(1024));
      const large = scanForCardNumber(fours(64 * 1024));
      expect(large.found).toBe(true);
      expect(large.windows + large.prefixes).toBe(small.windows + small.prefixes);
    });

    it('takes the worst case at 7 windows per digit exactly, so its cost has no hidden factor', () => {
      const n = 64 * 1024;
      const scan = scanForCardNumber('5'.repeat(n));
      // Starts 0 … n-13; each has min(7, n - start - 12) windows.
      const starts = n - 12;
      expect(scan.prefixes).toBe(starts);
      expect(scan.windows).toBe(7 * starts - (6 * 7) / 2);
    });
  });
});

describe('the scan’s Luhn arithmetic', () => {
  it('finds a card number in a run of digits exactly when one of its 13–19 digit windows passes the one Luhn check and has a brand prefix', () => {
    // Prefix sums in the scan, the shared passesLuhn everywhere else: they must agree.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const windows = (digits: string) =>
      Array.from({ length: 7 }, (_, i) => 13 + i).flatMap((length) =>
        Array.from({ length: Math.max(0, digits.length - length + 1) }, (_, start) => digits.slice(start, start + length)),
      );
    let found = 0;
    for (let i = 0; i < 3_000; i++) {
      const length = 13 + Math.floor(random() * 9);
      const digits = Array.from({ length }, () => Math.floor(random() * 10)).join('');
      const expected = windows(digits).some((window) => passesLuhn(window) && hasKnownBrandPrefix(window));
      expect(containsCardNumber(digits), digits).toBe(expected);
      if (expected) found++;
    }
    expect(found).toBeGreaterThan(100);
  });
});
