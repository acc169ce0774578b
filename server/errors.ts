/**
 * The API's error vocabulary. Every non-2xx answer is an `ApiError` with a
 * stable `code`; the status and `type` follow from the code, so a handler
 * cannot send `card_expired` with the wrong status by accident.
 *
 * Messages are fixed strings written for humans. They never interpolate
 * request data: an error must not echo a card number, CVC, key or raw body.
 */

export type ErrorType = 'invalid_request' | 'authentication' | 'card' | 'rate_limit' | 'idempotency' | 'api';

interface ErrorDefinition {
  status: number;
  type: ErrorType;
  message: string;
}

const define = <T extends Record<string, ErrorDefinition>>(catalog: T): T => catalog;

export const ERRORS = define({
  // 400 — malformed request or ciphertext
  invalid_json: { status: 400, type: 'invalid_request', message: 'The request body is not valid JSON.' },
  parameter_invalid: { status: 400, type: 'invalid_request', message: 'A request parameter is missing or invalid.' },
  parameter_unknown: { status: 400, type: 'invalid_request', message: 'The request contains an unknown parameter.' },
  invalid_jwe: { status: 400, type: 'invalid_request', message: 'The card ciphertext is not a valid JWE for this vault.' },
  unknown_kid: { status: 400, type: 'invalid_request', message: 'The card ciphertext names an encryption key this vault does not have.' },
  stale_ciphertext: { status: 400, type: 'invalid_request', message: 'The card ciphertext is too old or dated in the future; encrypt the card again.' },
  session_invalid: { status: 400, type: 'invalid_request', message: 'The session is unknown, expired or belongs to another key; open a new session.' },
  // 401 / 403
  unauthenticated: { status: 401, type: 'authentication', message: 'No valid API key was provided.' },
  secret_key_required: { status: 403, type: 'authentication', message: 'This request needs a secret key; publishable keys can only create tokens from the card fields.' },
  publishable_key_required: { status: 403, type: 'authentication', message: 'This request is made with a publishable key from the card fields, not a secret key.' },
  origin_not_allowed: { status: 403, type: 'authentication', message: 'This origin is not allowed to use the card fields for this merchant.' },
  // 402
  card_declined: { status: 402, type: 'card', message: 'The card was declined.' },
  // 404
  not_found: { status: 404, type: 'invalid_request', message: 'No such endpoint.' },
  token_not_found: { status: 404, type: 'invalid_request', message: 'No such token.' },
  payment_not_found: { status: 404, type: 'invalid_request', message: 'No such payment.' },
  merchant_not_found: { status: 404, type: 'invalid_request', message: 'No such merchant.' },
  // 409
  replayed_ciphertext: { status: 409, type: 'invalid_request', message: 'This card ciphertext was already used; encrypt the card again.' },
  token_used: { status: 409, type: 'invalid_request', message: 'This single-use token was already used.' },
  token_value_taken: { status: 409, type: 'invalid_request', message: 'A token with this value already exists.' },
  duplicate_card: { status: 409, type: 'card', message: 'This card is already registered and new tokens for it are declined.' },
  idempotency_in_flight: { status: 409, type: 'idempotency', message: 'A request with this Idempotency-Key is still being processed; retry later.' },
  // 413 / 415
  body_too_large: { status: 413, type: 'invalid_request', message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, type: 'invalid_request', message: 'The request body must be JSON (Content-Type: application/json).' },
  // 422 — card data or state
  invalid_card_number: { status: 422, type: 'card', message: 'The card number is not a valid card number.' },
  invalid_expiry: { status: 422, type: 'card', message: "The card's expiry date is not valid." },
  card_expired: { status: 422, type: 'card', message: 'The card has expired.' },
  invalid_cvc: { status: 422, type: 'card', message: "The card's security code is not valid." },
  card_not_accepted: { status: 422, type: 'card', message: 'This card cannot be used here; try another card.' },
  card_number_not_allowed: {
    status: 422,
    type: 'invalid_request',
    message: 'This field looks like it holds a card number. Card numbers are accepted only encrypted, in the card itself.',
  },
  idempotency_mismatch: { status: 422, type: 'idempotency', message: 'This Idempotency-Key was used with a different request.' },
  payment_not_capturable: { status: 422, type: 'invalid_request', message: 'Only an authorized payment that is not yet captured or voided can be captured.' },
  payment_not_voidable: { status: 422, type: 'invalid_request', message: 'Only an authorized payment that is not yet captured can be voided; refund a captured one.' },
  payment_not_refundable: { status: 422, type: 'invalid_request', message: 'Only a captured payment with an amount left to refund can be refunded.' },
  amount_too_large: { status: 422, type: 'invalid_request', message: 'The amount is more than the payment allows.' },
  webhook_url_not_allowed: { status: 422, type: 'invalid_request', message: 'Webhook URLs must be https:// and reach a public address.' },
  // 429 / 5xx
  rate_limited: { status: 429, type: 'rate_limit', message: 'Too many requests; retry later.' },
  acquirer_error: { status: 502, type: 'api', message: 'The acquirer did not answer; nothing was done. Retry with the same Idempotency-Key.' },
  internal_error: { status: 500, type: 'api', message: 'Something went wrong in the vault. The request was not completed.' },
  unavailable: { status: 503, type: 'api', message: 'The vault cannot reach its storage; nothing was stored. Retry later.' },
});

export type ErrorCode = keyof typeof ERRORS;

export interface ApiErrorOptions {
  /** Overrides the catalog message; must still be a fixed string (never request data). */
  message?: string;
  param?: string;
  headers?: Record<string, string>;
  /** Extra fields in the error body, such as `decline_code`. */
  extra?: Record<string, unknown>;
  cause?: unknown;
}

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | undefined;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, options: ApiErrorOptions = {}) {
    const definition = ERRORS[code];
    super(options.message ?? definition.message, { cause: options.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = definition.status;
    this.type = definition.type;
    this.param = options.param;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }

  toBody(): { error: Record<string, unknown> } {
    return {
      error: {
        type: this.type,
        code: this.code,
        message: this.message,
        ...(this.param === undefined ? {} : { param: this.param }),
        ...this.extra,
      },
    };
  }
}
