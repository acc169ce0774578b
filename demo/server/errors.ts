import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { VaultRequestError, VaultUnreachableError } from './vault-client.ts';

/** An answer the shop gives its own pages: `{ error: { code, message } }`, the message written for the shopper. */
export class ShopError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, sent as `Retry-After` (with 429). */
    readonly retryAfter: number | undefined = undefined,
  ) {
    super(message);
  }
}

/** A wait in words for the shopper: "45 seconds", "3 minutes", "2 hours" (rounded up). */
export function waitInWords(seconds: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds < 60) return plural(Math.max(1, Math.ceil(seconds)), 'second');
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return plural(minutes, 'minute');
  return plural(Math.ceil(seconds / 3600), 'hour');
}

/**
 * Past one of the shop's card-attempt limits, or the vault's: the same
 * answer whatever tripped, so it tells nothing about the card.
 */
export const tooManyCardAttempts = (retryAfter: number) =>
  new ShopError(429, 'too_many_attempts', `Too many card attempts. For your security, please wait ${waitInWords(retryAfter)} before trying again.`, retryAfter);

/** A sign-in refused while the e-mail address or the client is locked, whether or not the address has an account. */
export const tooManySignIns = (retryAfter: number) =>
  new ShopError(429, 'too_many_sign_in_attempts', `Too many sign-in attempts. For your security, please wait ${waitInWords(retryAfter)} before trying again.`, retryAfter);

/** Parses a request body (or query) with zod; the shopper gets a fixed sentence, never zod's, which can quote the input. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw new ShopError(400, 'parameter_invalid', 'The request was not understood. Reload the page and try again.');
  return parsed.data;
}

/** The sandbox decline codes (and the usual others) in words a shopper can act on. */
const DECLINES: Record<string, string> = {
  generic_decline: 'Your card was declined. Try another card.',
  insufficient_funds: 'Your card was declined for insufficient funds. Try another card.',
  expired_card: 'Your card has expired. Try another card.',
  incorrect_cvc: 'The security code (CVC) is incorrect. Check it, or try another card.',
  lost_card: 'Your card was declined. Try another card.',
  stolen_card: 'Your card was declined. Try another card.',
  do_not_honor: 'Your bank declined the payment. Contact your bank, or try another card.',
};

export const declineMessage = (code: string | undefined): string => DECLINES[code ?? ''] ?? GENERIC_DECLINE;

/** The one sentence for every decline after the first of an order or session: the acquirer's reason helps a card tester more than a shopper. */
export const GENERIC_DECLINE = DECLINES['generic_decline']!;

/** The vault's own wait, kept within a day: a missing or absurd `Retry-After` must not lock a shopper out for long. */
const vaultWait = (seconds: number | undefined) => Math.min(86_400, Math.max(1, seconds ?? 60));

/**
 * What a failed vault call means for the shopper. Codes the shopper cannot
 * fix (a wrong secret key, say) are an operator problem and say so only in
 * the log.
 */
export function fromVault(error: unknown, log: Logger): ShopError {
  if (error instanceof VaultUnreachableError || (error instanceof VaultRequestError && (error.status === 503 || error.code === 'acquirer_error'))) {
    log.warn({ err: safeError(error) }, 'vault unavailable');
    // After a payment call with no answer the outcome is unknown; the next try checks before charging, so "not twice" holds either way.
    return new ShopError(503, 'vault_unavailable', 'The payment service did not answer. Please try again in a moment: you will not be charged twice.');
  }
  if (!(error instanceof VaultRequestError)) return error instanceof ShopError ? error : new ShopError(500, 'internal_error', GENERIC);
  if (error.status === 429) {
    // The vault's velocity limits: its wording stays here; the shopper gets the shop's own answer, and the cart stays payable later.
    log.warn({ vault_status: error.status, vault_code: error.code }, 'vault rate limited the request');
    return tooManyCardAttempts(vaultWait(error.retryAfter));
  }
  switch (error.code) {
    case 'card_declined':
      return new ShopError(402, 'card_declined', declineMessage(error.declineCode));
    case 'token_not_found':
      return new ShopError(404, 'card_not_found', 'This card entry has expired or is no longer on file. Please enter the card again.');
    case 'token_used':
      return new ShopError(409, 'card_used', 'This card entry was already used for a payment. Please enter the card again.');
    case 'invalid_cvc':
      return new ShopError(422, 'invalid_cvc', 'The security code (CVC) is not valid for this card.');
    case 'replayed_ciphertext':
    case 'stale_ciphertext':
      return new ShopError(409, 'enter_again', 'Please enter the security code again.');
    case 'payment_not_capturable':
    case 'payment_not_voidable':
    case 'payment_not_refundable':
      return new ShopError(422, error.code, 'The payment is not in a state that allows this any more. Reload to see where it stands.');
    default:
      log.error({ vault_status: error.status, vault_code: error.code }, 'vault refused the request');
      return new ShopError(502, 'vault_error', 'The payment service refused the request. You have not been charged; please try again later.');
  }
}

const GENERIC = 'Something went wrong in the shop. Nothing was done; please try again.';

export function errorHandler(log: Logger) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const answer = toShopError(error, log);
    if (answer.retryAfter !== undefined) res.set('Retry-After', String(Math.max(1, Math.ceil(answer.retryAfter))));
    res.status(answer.status).json({ error: { code: answer.code, message: answer.message } });
  };
}

function toShopError(error: unknown, log: Logger): ShopError {
  if (error instanceof ShopError) return error;
  if (error instanceof VaultRequestError || error instanceof VaultUnreachableError) return fromVault(error, log);
  // body-parser's errors (client errors with a `type`): answered by status alone, since they carry the raw body.
  const parserError = error as { type?: unknown; status?: unknown } | null;
  if (typeof parserError?.type === 'string' && typeof parserError.status === 'number' && parserError.status < 500) {
    return parserError.status === 413
      ? new ShopError(413, 'body_too_large', 'The request body is too large.')
      : new ShopError(400, 'invalid_json', 'The request body could not be read as JSON.');
  }
  log.error({ err: { ...safeError(error), stack: error instanceof Error ? error.stack : undefined } }, 'request failed');
  return new ShopError(500, 'internal_error', GENERIC);
}

/**
 * Name, message and code, down the chain of causes (where a failed fetch
 * keeps its ECONNREFUSED): never an error's other properties, which can hold
 * request data.
 */
export function safeError(error: unknown, depth = 0): Record<string, unknown> | undefined {
  if (!(error instanceof Error) || depth > 3) return undefined;
  return { type: error.name, message: error.message, code: (error as { code?: unknown }).code, cause: safeError(error.cause, depth + 1) };
}
