/** Field names, as used in `param` of validation errors and in focus/blur events. */
export const FIELD_NAMES = ['number', 'expiry', 'cvc', 'name', 'postal_code'] as const;
export type FieldName = (typeof FIELD_NAMES)[number];

/** Error codes the widget itself produces (vault error codes pass through unchanged). */
export const WIDGET_ERROR_CODES = {
  /** A field is empty or invalid; `param` names it. */
  validation: 'validation_error',
  /** The vault could not be reached, or did not answer in time. */
  network: 'network_error',
  /** The fields iframe never completed its handshake (unknown key, origin not allowed, blocked frame). */
  unavailable: 'fields_unavailable',
  /** `tokenize()` was called before `ready` or after `destroy()`. */
  notReady: 'not_ready',
  /** A `tokenize()` is already running for this card. */
  busy: 'tokenize_in_progress',
} as const;

/** How long the fields get to answer a tokenize request before the loader gives up. */
export const TOKENIZE_TIMEOUT_MS = 10_000;
/** How long the loader waits for the iframe's hello before it reports `fields_unavailable`. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
