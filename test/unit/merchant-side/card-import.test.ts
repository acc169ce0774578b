/**
 * The card import's CSV on the merchant's side (merchant-side/card-import.ts,
 * used by `tessera tokens import` and the demo dashboard): a faulty file is
 * refused naming its line and column and never quoting a cell; rows become
 * card plaintexts, or the error the vault would give them; and the cards
 * are JWEs the transport key's private half opens.
 */
import { generateKeyPair, exportJWK, compactDecrypt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  CardImportFileError,
  encryptCardItems,
  isRowProblem,
  parseCardImportCsv,
  planCardRow,
  transportKeyFrom,
  type PlannedCard,
} from '../../../merchant-side/card-import.ts';
import { CARDS } from '../../support/cards.ts';

const HEADER = 'number,exp_month,exp_year,reference';
const year = new Date().getUTCFullYear() + 2;

function refusal(text: string): { line: number; column: number | undefined; message: string } {
  try {
    parseCardImportCsv(text);
  } catch (error) {
    if (error instanceof CardImportFileError) return { line: error.line, column: error.column, message: error.message };
    throw error;
  }
  throw new Error('the file was accepted');
}

describe('parseCardImportCsv', () => {
  it('reads the header case-insensitively, skips empty lines, trims cells and numbers rows after the header', () => {
    const file = parseCardImportCsv(`\uFEFFNumber, EXP_MONTH ,exp_year\n\n${CARDS.visa.spaced},12,${year}\n"${CARDS.mastercard.number}", 6 ,${year}\n`);
    expect(file.columns).toEqual(['number', 'exp_month', 'exp_year']);
    expect(file.rows).toEqual([
      { row: 1, line: 3, cells: { number: CARDS.visa.spaced, exp_month: '12', exp_year: String(year) } },
      { row: 2, line: 4, cells: { number: CARDS.mastercard.number, exp_month: '6', exp_year: String(year) } },
    ]);
  });

  it.each([
    ['an unknown column, named when it is a plain name', `number,exp_month,exp_yr\n${CARDS.visa.number},1,${year}`, 1, 3, 'Line 1, column 3: unknown column exp_yr; the columns are number, exp_month'],
    ['a column given twice', `number,exp_month,exp_year,number\n${CARDS.visa.number},1,${year},x`, 1, 4, 'Line 1, column 4: the column number appears twice.'],
    ['a required column missing', `number,exp_month\n${CARDS.visa.number},1`, 1, undefined, 'Line 1: missing column exp_year.'],
    ['a row with a cell too many', `${HEADER}\n${CARDS.visa.number},1,${year},crm-1\n${CARDS.visa.number},1,${year},crm-2,extra`, 3, 5, 'Line 3, column 5: this row has 5 cells and the header 4.'],
    ['a row with a cell missing', `${HEADER}\n${CARDS.visa.number},1`, 2, 3, 'Line 2, column 3: this row has 2 cells and the header 4.'],
    ['a quote never closed', `${HEADER}\n${CARDS.visa.number},1,${year},"crm-1\n`, 2, 4, 'Line 2, column 4: a quoted cell is never closed.'],
  ])('refuses %s, naming the line and column', (_name, text, line, column, message) => {
    const found = refusal(text);
    expect({ line: found.line, column: found.column }).toEqual({ line, column });
    expect(found.message).toContain(message);
  });

  it('never repeats a cell in its refusals, even a header cell holding a card number', () => {
    for (const text of [`number,exp_month,exp_year,${CARDS.visa.number}\n`, `${HEADER}\n${CARDS.visa.number},1,${year},"crm ${CARDS.amex.number}"x\n`]) {
      const { message } = refusal(text);
      expect(message).not.toContain(CARDS.visa.number);
      expect(message).not.toContain(CARDS.amex.number);
    }
  });

  it('reads an empty file as no rows', () => {
    expect(parseCardImportCsv('')).toEqual({ columns: [], rows: [] });
  });
});

describe('planCardRow', () => {
  const [row] = parseCardImportCsv(`number,exp_month,exp_year,cvc,name,reference,customer\n${CARDS.amex.spaced},9,${year % 100},${CARDS.amex.cvc},Ada,crm-1,cus_1\n`).rows;

  it('makes the card plaintext the vault expects: digits only, a four-digit year, reusable by default', () => {
    expect(planCardRow(row!)).toEqual({
      row: 1,
      line: 2,
      reference: 'crm-1',
      customer: 'cus_1',
      card: { number: CARDS.amex.number, exp_month: 9, exp_year: year, cvc: CARDS.amex.cvc, name: 'Ada' },
      reusable: true,
      declineDuplicates: false,
    });
    expect(planCardRow(row!, { declineDuplicates: true })).toMatchObject({ declineDuplicates: true });
  });

  it.each([
    ['number', '4242 4242', 'invalid_card_number'],
    ['exp_month', 'xx', 'invalid_expiry'],
    ['exp_year', '202', 'invalid_expiry'],
    ['reusable', 'maybe', 'parameter_invalid'],
  ] as const)('answers the error the vault would give a bad %s, with its column and without its value', (column, value, code) => {
    const cells = { number: CARDS.visa.number, exp_month: '1', exp_year: String(year), [column]: value };
    const planned = planCardRow({ row: 4, line: 5, cells });
    expect(planned).toMatchObject({ row: 4, line: 5, column, code });
    expect(isRowProblem(planned) && planned.problem).not.toContain(value);
  });
});

describe('encryptCardItems', () => {
  it('encrypts each card to the transport key as a compact JWE with its kid and iat, beside the row’s reference and flags', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    const key = await transportKeyFrom([{ ...(await exportJWK(publicKey)), kid: 'key_unit', alg: 'ECDH-ES+A256KW', use: 'enc' }]);
    const planned = planCardRow(parseCardImportCsv(`${HEADER}\n${CARDS.visa.number},12,${year},crm-9\n`).rows[0]!) as PlannedCard;
    const [item] = await encryptCardItems([planned], key!);
    expect(item).toMatchObject({ reference: 'crm-9', reusable: true, decline_duplicates: false });
    expect(item!.card).not.toContain(CARDS.visa.number);
    expect(decodeProtectedHeader(item!.card)).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'key_unit', iat: expect.any(Number) });
    const { plaintext } = await compactDecrypt(item!.card, privateKey);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toEqual({ number: CARDS.visa.number, exp_month: 12, exp_year: year });
  });

  it('finds no key to encrypt to when the vault publishes none', async () => {
    expect(await transportKeyFrom([])).toBeUndefined();
  });
});
