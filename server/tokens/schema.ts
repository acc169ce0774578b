import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';
import { maskNumbers } from '../log.ts';

/** A customer id: printable text the vault stores in the clear, so never a card number. */
export const Customer = freeText({ max: 255, pattern: /^[\x20-\x7e\u00a0-\uffff]+$/ });

/** A merchant-chosen token name: URL-safe, and never card-number-like. */
export const TokenValue = freeText({ max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ });

/** A token name sent to find a token (a path or a cursor): bounded, and never a card number. */
export const TokenName = freeText({ max: 128 });

/** The publishable key alone, checked (cheaply) before the rest of a card-fields body is parsed. */
export const FieldsKey = z.object({ key: z.string().min(1).max(128, { abort: true }) });

export const FieldsTokenRequest = z.strictObject({
  key: z.string().min(1).max(128, { abort: true }),
  session: z.string().min(1).max(128, { abort: true }),
  card: z.string().min(1),
  /** The shopper ticked "save card"; otherwise the token is single-use. */
  reusable: z.boolean().default(false),
  customer: Customer.optional(),
  /** The fields' moto mode: a card a merchant's agent keyed in, made a single-use token for MOTO payments only. */
  moto: z.boolean().default(false),
});

export const ServerTokenRequest = z.strictObject({
  card: z.string().min(1),
  /** The server-side form is the "add a card" step, so tokens are saved unless told otherwise. */
  reusable: z.boolean().default(true),
  customer: Customer.optional(),
  value: TokenValue.optional(),
  decline_duplicates: z.boolean().default(false),
  verify: z.boolean().default(false),
});

export const ListTokensQuery = z.strictObject({
  customer: Customer.optional(),
  fingerprint: z.string().regex(/^fp_[A-Za-z0-9_-]{43}$/).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: TokenName.optional(),
});

/** A token named in the path. */
export const TokenPath = z.strictObject({ token: TokenName });

/** `POST /v1/tokens/{token}/verify` takes no parameters. */
export const VerifyTokenRequest = z.strictObject({});

/** Items in one `PATCH /v1/tokens`. */
export const BULK_UPDATE_MAX_ITEMS = 1000;

/** The envelope is checked as a whole; each item is checked on its own, so one malformed item fails alone. */
export const BulkUpdateRequest = z.strictObject({
  tokens: z.array(z.unknown()).min(1).max(BULK_UPDATE_MAX_ITEMS),
});

export const BulkUpdateItem = z
  .strictObject({
    token: TokenValue,
    reusable: z.boolean().optional(),
    decline_duplicates: z.boolean().optional(),
    card: z.string().min(1).optional(),
  })
  .refine((item) => item.reusable !== undefined || item.decline_duplicates !== undefined || item.card !== undefined, {
    message: 'nothing to update',
    path: ['card'],
  });

/**
 * A token name as a client sent it, if it is safe to echo and record: never
 * a card-number-like string, and not a name the log would mask either (a
 * run of 12+ digits glued to letters is a valid name, but the audit log
 * keeps it, so it records no name rather than the digits).
 */
export function echoableTokenName(value: unknown): string | null {
  return TokenValue.safeParse(value).success && maskNumbers(value as string) === value ? (value as string) : null;
}
