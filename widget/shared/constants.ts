/** Field names, as used in `param` of validation errors and in focus/blur events. */
export const FIELD_NAMES = ['number', 'expiry', 'cvc', 'name', 'postal_code'] as const;
export type FieldName = (typeof FIELD_NAMES)[number];

/** How long the fields get to answer a tokenize request before the loader gives up. */
export const TOKENIZE_TIMEOUT_MS = 10_000;
/**
 * How long the fields wait for the vault, below `TOKENIZE_TIMEOUT_MS` so that
 * the fields, which know the outcome, answer before the loader gives up.
 */
export const VAULT_TIMEOUT_MS = 8_000;
/**
 * The header in which the vault repeats its answer to the fields' successful
 * `POST /v1/tokens` (the body's JSON, byte for byte). Chromium hands a frame
 * the status and headers as one step and the body in a later task, so the
 * fields read the token from here and skip that wait (~1 ms, issue #15).
 */
export const TOKEN_RESULT_HEADER = 'Tessera-Result';
/** After the frame's `load`, how long a missing hello may still arrive before the loader asks the vault why. */
export const HANDSHAKE_GRACE_MS = 3_000;
/**
 * How long the hidden warm frame that checkout.js makes as it runs (a keyless
 * vault document, which starts the vault site's renderer process) stays when
 * no card's frame loads meanwhile: a page that includes checkout.js but makes
 * no card gives the renderer back after this.
 */
export const WARM_FRAME_MS = 30_000;
/** How long the loader waits for the iframe's hello before it reports `fields_unavailable`. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Why a field is not complete, as `change.error.code` reports it (the
 * rejection of `tokenize()` says `validation_error` and names the field).
 */
export const FIELD_ERROR_CODES = [
  'incomplete_number',
  'invalid_number',
  'incomplete_expiry',
  'invalid_expiry_month',
  'expiry_in_past',
  'incomplete_cvc',
  'incomplete_name',
  'incomplete_postal_code',
  // A card number typed into the name or postal code field (found in the fields, or refused by the vault).
  'card_number_not_allowed',
  // The vault refused this card here (for one, a merchant that declines duplicates); another card may work.
  'card_not_accepted',
] as const;
export type FieldErrorCode = (typeof FIELD_ERROR_CODES)[number];
