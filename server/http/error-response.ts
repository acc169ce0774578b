import type { ErrorCode, VaultError } from '../errors.ts';

/** The HTTP status of each error code: the one place the vault's refusals meet HTTP. */
const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_csv: 400,
  parameter_invalid: 400,
  parameter_unknown: 400,
  invalid_jwe: 400,
  unknown_kid: 400,
  stale_ciphertext: 400,
  session_invalid: 400,
  unauthenticated: 401,
  secret_key_required: 403,
  publishable_key_required: 403,
  origin_not_allowed: 403,
  card_declined: 402,
  not_found: 404,
  token_not_found: 404,
  payment_not_found: 404,
  merchant_not_found: 404,
  webhook_endpoint_not_found: 404,
  webhook_delivery_not_found: 404,
  subscription_not_found: 404,
  token_batch_not_found: 404,
  network_token_not_found: 404,
  payment_link_not_found: 404,
  payment_batch_not_found: 404,
  payment_link_completed: 409,
  payment_link_expired: 409,
  payment_link_busy: 409,
  replayed_ciphertext: 409,
  token_used: 409,
  token_value_taken: 409,
  duplicate_card: 409,
  idempotency_in_flight: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  invalid_card_number: 422,
  invalid_expiry: 422,
  card_expired: 422,
  invalid_cvc: 422,
  card_not_accepted: 422,
  card_outdated: 422,
  card_number_not_allowed: 422,
  idempotency_mismatch: 422,
  payment_not_capturable: 422,
  payment_not_voidable: 422,
  payment_not_refundable: 422,
  amount_too_large: 422,
  network_token_unavailable: 422,
  webhook_url_not_allowed: 422,
  too_many_webhook_endpoints: 422,
  stored_credential_required: 422,
  token_not_reusable: 422,
  token_moto_only: 422,
  clock_cannot_go_back: 422,
  rate_limited: 429,
  acquirer_error: 502,
  internal_error: 500,
  unavailable: 503,
};

export const statusOf = (error: VaultError): number => STATUS[error.code];

/** The error body of the API: `{"error": {type, code, message, param?, …extra}}`. */
export function errorBody(error: VaultError): { error: Record<string, unknown> } {
  return {
    error: {
      type: error.type,
      code: error.code,
      message: error.message,
      ...(error.param === undefined ? {} : { param: error.param }),
      ...error.extra,
    },
  };
}

/** Headers an error answer carries: `Retry-After` when the error says when to try again. */
export function errorHeaders(error: VaultError): Record<string, string> {
  return error.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(error.retryAfterSeconds) };
}
