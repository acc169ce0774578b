import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../errors.ts';
import { containsCardNumber } from './card-number-scan.ts';

/**
 * Where a zod issue carries the API error code it must become
 * (`parseInput` and `parseCardPlaintext` answer with that code).
 */
const API_CODE = 'apiCode';

/** The parameters of a zod issue that `apiCodeOf` maps to `code`. */
export const withApiCode = (code: ErrorCode) => ({ [API_CODE]: code });

/** The API error code a zod issue was built to become, if any. */
export function apiCodeOf(issue: z.core.$ZodIssue): ErrorCode | undefined {
  if (issue.code !== 'custom') return undefined;
  const code = issue.params?.[API_CODE];
  return typeof code === 'string' && Object.hasOwn(ERRORS, code) ? (code as ErrorCode) : undefined;
}

export interface FreeTextOptions {
  /** The longest value accepted, checked first and alone: nothing after it ever sees a longer string. */
  max: number;
  /** Shortest value (after trimming); 1 unless said. */
  min?: number;
  /** The whole value's shape; a plain anchored character-class pattern, linear to match. */
  pattern?: RegExp;
  /** Trim surrounding white space before the other checks. */
  trim?: boolean;
}

/**
 * A string parameter the vault stores, echoes or records in the clear: a
 * customer id, a reference, a name, a URL, a token name sent to look one
 * up. Every such parameter is built with this, so it is
 *
 * - bounded before any other check (`abort`: a refused length stops there,
 *   so no pattern or scan ever runs on 60 KiB of an attacker's text), and
 * - refused with 422 `card_number_not_allowed` when it holds something
 *   that looks like a card number (the scan is linear; see
 *   `card-number-scan.ts`), since it would otherwise sit in a table, an
 *   audit entry or a stored response in the clear.
 *
 * A card number is reported even when the value is malformed too ("5555
 * 5555 5555 4444" as a postal code): the shape checks run only on a value
 * that passed the scan. The card-number issue does not abort the enclosing
 * object, so a card's own checks (number, expiry, CVC) still run and decide
 * which error a shopper sees first.
 */
export function freeText(options: FreeTextOptions) {
  const min = options.min ?? 1;
  let text = z.string().max(options.max, { abort: true });
  if (options.trim) text = text.trim();
  return text.superRefine((value, ctx) => {
    if (containsCardNumber(value)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain a card number', params: withApiCode('card_number_not_allowed') });
    } else if (value.length < min) {
      ctx.addIssue({ code: 'too_small', origin: 'string', minimum: min, inclusive: true, input: value });
    } else if (options.pattern !== undefined && !options.pattern.test(value)) {
      ctx.addIssue({ code: 'invalid_format', format: 'regex', pattern: options.pattern.source, input: value });
    }
  });
}
