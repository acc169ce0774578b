/**
 * The vault's error vocabulary. Services refuse with a `VaultError`: a
 * stable `code`, the `type` and human message that follow from it, and
 * what the caller needs to try again (`retryAfterSeconds`). What that
 * becomes over HTTP — the status, the `Retry-After` header, the body — is
 * decided in one place, `server/http/error-response.ts`.
 *
 * Messages are fixed strings written for humans. They never interpolate
 * request data: an error must not echo a card number, CVC, key or raw body.
 */

export type ErrorType = 'invalid_request' | 'authentication' | 'card' | 'rate_limit' | 'idempotency' | 'api';

interface ErrorDefinition {
  type: ErrorType;
  message: string;
}

const define = <T extends Record<string, ErrorDefinition>>(catalog: T): T => catalog;

export const ERRORS = define({
  // 400 — malformed request or ciphertext
  invalid_json: { type: 'invalid_request', message: 'The request body is not valid JSON.' },
  parameter_invalid: { type: 'invalid_request', message: 'A request parameter is missing or invalid.' },
  parameter_unknown: { type: 'invalid_request', message: 'The request contains an unknown parameter.' },
  invalid_jwe: { type: 'invalid_request', message: 'The card ciphertext is not a valid JWE for this vault.' },
  unknown_kid: { type: 'invalid_request', message: 'The card ciphertext names an encryption key this vault does not have.' },
  stale_ciphertext: { type: 'invalid_request', message: 'The card ciphertext is too old or dated in the future; encrypt the card again.' },
  session_invalid: { type: 'invalid_request', message: 'The session is unknown, expired or belongs to another key; open a new session.' },
  // 401 / 403
  unauthenticated: { type: 'authentication', message: 'No valid API key was provided.' },
  secret_key_required: { type: 'authentication', message: 'This request needs a secret key; publishable keys can only create tokens from the card fields.' },
  publishable_key_required: { type: 'authentication', message: 'This request is made with a publishable key from the card fields, not a secret key.' },
  origin_not_allowed: { type: 'authentication', message: 'This origin is not allowed to use the card fields for this merchant.' },
  // 402
  card_declined: { type: 'card', message: 'The card was declined.' },
  // 404
  not_found: { type: 'invalid_request', message: 'No such endpoint.' },
  token_not_found: { type: 'invalid_request', message: 'No such token.' },
  payment_not_found: { type: 'invalid_request', message: 'No such payment.' },
  merchant_not_found: { type: 'invalid_request', message: 'No such merchant.' },
  webhook_endpoint_not_found: { type: 'invalid_request', message: 'No such webhook endpoint.' },
  webhook_delivery_not_found: { type: 'invalid_request', message: 'No such webhook delivery.' },
  subscription_not_found: { type: 'invalid_request', message: 'No such subscription.' },
  token_batch_not_found: { type: 'invalid_request', message: 'No such token batch.' },
  network_token_not_found: { type: 'invalid_request', message: 'No such network token.' },
  payment_link_not_found: { type: 'invalid_request', message: 'No such payment link.' },
  payment_batch_not_found: { type: 'invalid_request', message: 'No such payment batch.' },
  // 409
  replayed_ciphertext: { type: 'invalid_request', message: 'This card ciphertext was already used; encrypt the card again.' },
  token_used: { type: 'invalid_request', message: 'This single-use token was already used.' },
  token_value_taken: { type: 'invalid_request', message: 'A token with this value already exists.' },
  duplicate_card: { type: 'card', message: 'This card is already registered and new tokens for it are declined.' },
  payment_link_completed: { type: 'invalid_request', message: 'This payment link has been paid and takes no more payments.' },
  payment_link_expired: { type: 'invalid_request', message: 'This payment link has expired and takes no payment.' },
  payment_link_busy: { type: 'invalid_request', message: 'Another payment on this link is being made; retry in a moment.' },
  idempotency_in_flight: { type: 'idempotency', message: 'A request with this Idempotency-Key is still being processed; retry later.' },
  // 413 / 415
  body_too_large: { type: 'invalid_request', message: 'The request body is too large.' },
  unsupported_media_type: { type: 'invalid_request', message: 'The request body must be JSON (Content-Type: application/json).' },
  invalid_csv: { type: 'invalid_request', message: 'The CSV body is not valid.' },
  // 422 — card data or state
  invalid_card_number: { type: 'card', message: 'The card number is not a valid card number.' },
  invalid_expiry: { type: 'card', message: "The card's expiry date is not valid." },
  card_expired: { type: 'card', message: 'The card has expired.' },
  invalid_cvc: { type: 'card', message: "The card's security code is not valid." },
  card_not_accepted: { type: 'card', message: 'This card cannot be used here; try another card.' },
  card_outdated: {
    type: 'card',
    message: "The issuer replaced this saved card's number and the vault holds only the old one; its network token cannot be used now. Ask the customer for the card again.",
  },
  card_number_not_allowed: { type: 'invalid_request', message: 'This field looks like it holds a card number. Card numbers are accepted only encrypted, in the card itself.' },
  idempotency_mismatch: { type: 'idempotency', message: 'This Idempotency-Key was used with a different request.' },
  payment_not_capturable: { type: 'invalid_request', message: 'Only an authorized payment that is not yet captured or voided can be captured.' },
  payment_not_voidable: { type: 'invalid_request', message: 'Only an authorized payment that is not yet captured can be voided; refund a captured one.' },
  payment_not_refundable: { type: 'invalid_request', message: 'Only a captured payment with an amount left to refund can be refunded.' },
  amount_too_large: { type: 'invalid_request', message: 'The amount is more than the payment allows.' },
  too_many_webhook_endpoints: { type: 'invalid_request', message: 'A merchant has at most 16 webhook endpoints; delete one first.' },
  network_token_unavailable: { type: 'invalid_request', message: 'This network token has no token at the network that this change can apply to.' },
  webhook_url_not_allowed: { type: 'invalid_request', message: 'Webhook URLs must be https:// and reach a public address.' },
  stored_credential_required: {
    type: 'invalid_request',
    message: 'A merchant-initiated payment needs a stored credential: first a customer-initiated payment with setup_future_usage on this saved card.',
  },
  token_not_reusable: { type: 'invalid_request', message: 'setup_future_usage needs a reusable token (a saved card); this token is single-use.' },
  token_moto_only: { type: 'invalid_request', message: 'This card was keyed in by an agent (moto mode); only a payment with channel "moto" can use it.' },
  clock_cannot_go_back: { type: 'invalid_request', message: "A sandbox clock only moves forward: advance_to is before the clock's current time." },
  // 429 / 5xx
  rate_limited: { type: 'rate_limit', message: 'Too many requests; retry later.' },
  acquirer_error: { type: 'api', message: 'The acquirer did not answer; nothing was done. Retry with the same Idempotency-Key.' },
  internal_error: { type: 'api', message: 'Something went wrong in the vault. The request was not completed.' },
  unavailable: { type: 'api', message: 'The vault cannot reach its storage; nothing was stored. Retry later.' },
});

export type ErrorCode = keyof typeof ERRORS;

export interface VaultErrorOptions {
  /** Overrides the catalog message; must still be a fixed string (never request data). */
  message?: string;
  param?: string;
  /** When the same request may succeed again (rate limits, storage down, a request still in flight). */
  retryAfterSeconds?: number;
  /** Extra fields in the error, such as `decline_code`. */
  extra?: Record<string, unknown>;
  cause?: unknown;
}

export class VaultError extends Error {
  readonly code: ErrorCode;
  readonly type: ErrorType;
  readonly param: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, options: VaultErrorOptions = {}) {
    const definition = ERRORS[code];
    super(options.message ?? definition.message, { cause: options.cause });
    this.name = 'VaultError';
    this.code = code;
    this.type = definition.type;
    this.param = options.param;
    this.retryAfterSeconds = options.retryAfterSeconds === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfterSeconds));
    this.extra = options.extra ?? {};
  }
}
