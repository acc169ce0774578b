import creditCardType from 'credit-card-type';
import { z } from 'zod';
import { passesLuhn } from '../../widget/shared/luhn.ts';
import { VaultError, type ErrorCode } from '../errors.ts';
import { LONGER_RULES_BY_PREFIX4 } from '../lib/brand-prefixes.ts';
import { apiCodeOf, freeText, withApiCode } from '../lib/free-text.ts';

type Brand = { readonly brand: string; readonly cvcLength: number | null };

/** The brand of a full card number as credit-card-type names it, or `unknown`. */
export function detectBrand(number: string): Brand {
  if (!/^\d{4}/.test(number)) return lookUpBrand(number);
  const prefix = Number(number.slice(0, 4));
  if (BY_PREFIX[prefix] !== undefined) return BY_PREFIX[prefix];
  // Under a prefix a longer brand prefix starts within (Elo's 401178 in 4011, say), the later digits decide.
  return LONGER_RULES_BY_PREFIX4.has(prefix) ? lookUpBrand(number) : (BY_PREFIX[prefix] = lookUpBrand(number));
}

function lookUpBrand(number: string): Brand {
  const [match] = creditCardType(number);
  return match === undefined ? { brand: 'unknown', cvcLength: null } : { brand: match.type, cvcLength: match.code.size };
}

/**
 * Each 4-digit prefix's answer, once looked up, where those 4 digits decide
 * it (not a key of `LONGER_RULES_BY_PREFIX4`): credit-card-type reads
 * nothing but a number's first digits (lib/brand-prefixes.ts), and a
 * lookup costs ~10 µs on every
 * tokenization's way (it copies every brand it matches). Only the answer is
 * kept, at the prefix's index: four digits of an issuer's range, never more
 * of a number (docs/decisions.md, "Tokens", says why four are acceptable).
 */
const BY_PREFIX: (Brand | undefined)[] = new Array<Brand | undefined>(10_000).fill(undefined);

/** Whether a CVC is all digits and as long as the brand of `number` asks (3 or 4 digits for an unknown brand). */
export function cvcFitsCard(number: string, cvc: string): boolean {
  return cvcFitsBrand(detectBrand(number), cvc);
}

const cvcFitsBrand = ({ cvcLength }: { cvcLength: number | null }, cvc: string) =>
  cvcLength === null ? /^\d{3,4}$/.test(cvc) : /^\d+$/.test(cvc) && cvc.length === cvcLength;

/**
 * The brand of the card `parseCardPlaintext` is validating, looked up once
 * for its CVC and its answer (credit-card-type copies every brand it
 * matches, ~10 µs a lookup). Parsing is synchronous, so nothing else runs
 * meanwhile, and `parseCardPlaintext` clears it before it returns: no card
 * number outlives the call here.
 */
let lookedUp: { number: string; brand: ReturnType<typeof detectBrand> } | undefined;
const brandOf = (number: string) => (lookedUp?.number === number ? lookedUp : (lookedUp = { number, brand: detectBrand(number) })).brand;

/** Latest expiry year accepted: real cards are issued for a few years, not decades. */
const MAX_YEARS_AHEAD = 50;

/** A zod issue that carries the API error code it should become. */
const cardIssue = (code: ErrorCode, path: string) => ({ code: 'custom' as const, message: code, path: [path], params: withApiCode(code) });

const CardPlaintextSchema = z
    .strictObject({
      number: z.string(),
      exp_month: z.number().int(),
      exp_year: z.number().int(),
      cvc: z.string().optional(),
      // Kept in the clear (the token object returns the name): never a card number typed in the wrong field.
      name: freeText({ max: 100, trim: true }).optional(),
      postal_code: freeText({ max: 32, trim: true, pattern: /^[A-Za-z0-9][A-Za-z0-9 -]{0,15}$/ }).optional(),
    })
    .superRefine((card, ctx) => {
      const now = new Date();
      const year = now.getUTCFullYear();
      const month = now.getUTCMonth() + 1;
      const validNumber = /^\d{12,19}$/.test(card.number) && passesLuhn(card.number);
      if (!validNumber) ctx.addIssue(cardIssue('invalid_card_number', 'number'));
      if (card.exp_month < 1 || card.exp_month > 12 || card.exp_year < 2000 || card.exp_year > year + MAX_YEARS_AHEAD) {
        ctx.addIssue(cardIssue('invalid_expiry', 'exp_month'));
      } else if (card.exp_year * 12 + card.exp_month < year * 12 + month) {
        // A card is good through the last day of its expiry month.
        ctx.addIssue(cardIssue('card_expired', 'exp_year'));
      }
      if (card.cvc !== undefined && !(validNumber ? cvcFitsBrand(brandOf(card.number), card.cvc) : /^\d{3,4}$/.test(card.cvc))) {
        ctx.addIssue(cardIssue('invalid_cvc', 'cvc'));
      }
    });

export type CardPlaintext = z.output<typeof CardPlaintextSchema>;

export interface Card extends CardPlaintext {
  brand: string;
  last4: string;
}

/**
 * Which error wins when several fields are wrong: the order a shopper fixes
 * them in (number, expiry, CVC, then name and postal code).
 */
const PRIORITY: ErrorCode[] = ['invalid_card_number', 'invalid_expiry', 'card_expired', 'invalid_cvc', 'card_number_not_allowed'];

/** The field a card error points at. */
const PARAM: Partial<Record<ErrorCode, string>> = {
  invalid_card_number: 'number',
  invalid_expiry: 'exp_month',
  card_expired: 'exp_month',
  invalid_cvc: 'cvc',
};

/**
 * Validates decrypted card data. A plaintext of the wrong shape (unknown
 * keys — `__proto__` included —, wrong types, not JSON) is a malformed
 * request (400); a well-formed card that is not valid is a card error (422),
 * and so is a name or postal code holding a card number.
 */
export function parseCardPlaintext(plaintext: Uint8Array, param = 'card'): Card {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(plaintext).toString('utf8'));
  } catch {
    throw new VaultError('parameter_invalid', { message: 'The decrypted card data is not JSON.', param });
  }
  try {
    const result = CardPlaintextSchema.safeParse(json);
    if (result.success) return { ...result.data, brand: brandOf(result.data.number).brand, last4: result.data.number.slice(-4) };
    const coded = result.error.issues.map((issue) => ({ code: apiCodeOf(issue), field: String(issue.path[0] ?? '') }));
    if (coded.some((issue) => issue.code === undefined)) {
      throw new VaultError('parameter_invalid', { message: 'The decrypted card data does not have the expected fields.', param });
    }
    const code = PRIORITY.find((c) => coded.some((issue) => issue.code === c)) ?? 'invalid_card_number';
    throw new VaultError(code, { param: PARAM[code] ?? coded.find((issue) => issue.code === code)!.field });
  } finally {
    lookedUp = undefined;
  }
}
