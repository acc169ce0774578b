/**
 * parseCardPlaintext looks a card's brand up once a parse (for its CVC's
 * length and its answer): each card in a row gets its own brand and its own
 * CVC rule, whatever the card before it was, refused or not.
 */
import { describe, expect, it } from 'vitest';
import { parseCardPlaintext } from '../../../server/cards/card.ts';
import { VaultError } from '../../../server/errors.ts';
import { CARDS } from '../../support/cards.ts';

const plaintext = (card: Record<string, unknown>) =>
  new TextEncoder().encode(JSON.stringify({ exp_month: 12, exp_year: new Date().getUTCFullYear() + 2, ...card }));

const refusal = (card: Record<string, unknown>) => {
  try {
    parseCardPlaintext(plaintext(card));
  } catch (error) {
    return error instanceof VaultError ? error.code : error;
  }
  return 'accepted';
};

describe('parseCardPlaintext, card after card', () => {
  it('gives each card its own brand and CVC rule, in any order', () => {
    for (let round = 0; round < 3; round++) {
      expect(parseCardPlaintext(plaintext({ number: CARDS.amex.number, cvc: CARDS.amex.cvc }))).toMatchObject({ brand: 'american-express', last4: '0005' });
      expect(refusal({ number: CARDS.visa.number, cvc: CARDS.amex.cvc })).toBe('invalid_cvc');
      expect(parseCardPlaintext(plaintext({ number: CARDS.visa.number, cvc: CARDS.visa.cvc }))).toMatchObject({ brand: 'visa', last4: '4242' });
      expect(refusal({ number: CARDS.amex.number, cvc: CARDS.visa.cvc })).toBe('invalid_cvc');
      expect(parseCardPlaintext(plaintext({ number: CARDS.mastercard.number }))).toMatchObject({ brand: 'mastercard', last4: '4444' });
    }
  });

  it('still answers the shopper’s first fault first when the number is also in the name', () => {
    expect(refusal({ number: CARDS.visa.number, cvc: '12', name: CARDS.visa.number })).toBe('invalid_cvc');
    expect(refusal({ number: CARDS.visa.number, cvc: CARDS.visa.cvc, name: CARDS.visa.number })).toBe('card_number_not_allowed');
    expect(parseCardPlaintext(plaintext({ number: CARDS.amex.number, cvc: CARDS.amex.cvc })).brand).toBe('american-express');
  });
});
