import creditCardType from 'credit-card-type';
import { describe, expect, it } from 'vitest';
import { detectBrand } from '../../../server/cards/card.ts';

/** credit-card-type's own answer, as detectBrand gave it before it kept answers by prefix. */
function libraryBrand(number: string) {
  const [match] = creditCardType(number);
  return match === undefined ? { brand: 'unknown', cvcLength: null } : { brand: match.type, cvcLength: match.code.size };
}

const digits = (count: number) => Array.from({ length: count }, () => Math.floor(Math.random() * 10)).join('');

describe('detectBrand', () => {
  it('answers as credit-card-type does for every 4-digit prefix, whichever number under it comes first', () => {
    let differing = 0;
    for (let prefix = 0; prefix < 10_000; prefix++) {
      const head = String(prefix).padStart(4, '0');
      // Lengths from 12 to 19; the first call of a prefix may keep its answer for the others.
      for (const length of [16, 12, 19, 15]) {
        const number = head + digits(length - 4);
        if (JSON.stringify(detectBrand(number)) !== JSON.stringify(libraryBrand(number))) differing++;
      }
    }
    expect(differing).toBe(0);
  });

  it.each([
    ['Visa', '4242424242424242', 'visa', 3],
    ['Elo under a Visa prefix (401178)', '4011780000000000', 'elo', 3],
    ['Visa under the same 4 digits', '4011000000000000', 'visa', 3],
    ['Mastercard 2-series', '2221000000000009', 'mastercard', 3],
    ['American Express', '378282246310005', 'american-express', 4],
    ['Hipercard (606282)', '6062826786276634', 'hipercard', 3],
    ['no brand', '9999999999999995', 'unknown', null],
  ])('%s, asked twice', (_name, number, brand, cvcLength) => {
    for (let i = 0; i < 2; i++) expect(detectBrand(number)).toEqual({ brand, cvcLength });
    expect(detectBrand(number)).toEqual(libraryBrand(number));
  });

  it('looks up numbers shorter than 4 digits or not all digits as credit-card-type does', () => {
    for (const number of ['', '4', '37', '601', '42a4242424242424', ' 4242424242424242']) {
      expect(detectBrand(number)).toEqual(libraryBrand(number));
    }
  });
});
