import creditCardType from 'credit-card-type';
import { describe, expect, it } from 'vitest';
import { BRAND_RULES, detectBrand } from '../../../widget/fields/card-brands.ts';
import { formatCardNumberInput } from '../../../widget/fields/card-number.ts';

/** Test numbers per brand; credit-card-type (what the vault runs) must agree on each. */
const SAMPLES: Record<string, string[]> = {
  visa: ['4242424242424242', '4111111111111111', '4000056655665556', '4012888888881881'],
  mastercard: ['5555555555554444', '5105105105105100', '2223003122003222', '2720991234567899', '2300000000000003'],
  'american-express': ['378282246310005', '371449635398431', '340000000000009'],
  'diners-club': ['30569309025904', '36227206271667', '3852000002323700', '3900000000000000000'],
  discover: ['6011111111111117', '6011000990139424', '6445644564456445', '6500000000000002'],
  jcb: ['3530111333300000', '3566002020360505', '2131000000000008', '1800000000000000'],
  unionpay: ['6200000000000005', '6205500000000000004', '6270000000000000', '8171999927660000'],
  maestro: ['6759649826438453', '5018000000000009', '6304000000000000', '5600000000000000'],
  mir: ['2200000000000004', '2204000000000000000'],
};

const libraryBrand = (digits: string) => {
  const matches = creditCardType(digits);
  return matches.length === 1 ? matches[0]!.type : undefined;
};

describe('brand table compared with credit-card-type', () => {
  it('covers every brand it has a rule for with samples', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(BRAND_RULES.map((rule) => rule.brand).sort());
  });

  describe.each(BRAND_RULES.map((rule) => [rule.brand, rule] as const))('%s', (brand, rule) => {
    const info = creditCardType.getTypeInfo(brand);

    it('has the library lengths, gaps and CVC length', () => {
      expect({ lengths: rule.lengths, gaps: rule.gaps, cvcLength: rule.cvcLength }).toEqual({
        lengths: info.lengths,
        gaps: info.gaps,
        cvcLength: info.code.size,
      });
    });

    it.each(SAMPLES[brand]!)('detects %s as the library does', (digits) => {
      expect(libraryBrand(digits)).toBe(brand);
      expect(detectBrand(digits)?.brand).toBe(brand);
    });

    it.each(SAMPLES[brand]!)('spaces %s at the library gaps', (digits) => {
      const groups = formatCardNumberInput(digits).split(' ').map((group) => group.length);
      const expected = [...info.gaps, digits.length].map((gap, i, gaps) => gap - (gaps[i - 1] ?? 0)).filter((size) => size > 0);
      expect(groups).toEqual(expected);
    });
  });

  it.each(['4', '42', '5', '51', '2', '22', '2221', '3', '34', '37', '30', '36', '6', '60', '601', '6011', '62', '81', '35', '3528', '1', '7'])(
    'agrees on the brand (or its absence) while %s is being typed',
    (digits) => {
      expect(detectBrand(digits)?.brand).toBe(libraryBrand(digits));
    },
  );

  it('knows no brand for an empty number', () => {
    expect(detectBrand('')).toBeUndefined();
  });
});
