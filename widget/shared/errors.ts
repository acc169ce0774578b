/**
 * The errors the widget raises itself; errors from the vault pass through
 * unchanged. Each is its own constant so the loader bundles only the ones it
 * uses. Messages are for the merchant's developers and never carry card data.
 */
import type { TesseraErrorShape } from './messages.ts';

/** A field is empty or invalid; the fields replace the message with the shopper's and set `param`. */
export const VALIDATION_ERROR: TesseraErrorShape = {
  code: 'validation_error',
  type: 'validation_error',
  message: 'A card field is empty or invalid.',
};

/** The vault could not be reached or did not answer in time; nothing was tokenized, the fields stay usable. */
export const NETWORK_ERROR: TesseraErrorShape = {
  code: 'network_error',
  type: 'api_connection',
  message: 'The vault could not be reached or did not answer in time.',
};

/** The fields never completed their handshake and the vault gave no more specific reason. */
export const FIELDS_UNAVAILABLE: TesseraErrorShape = {
  code: 'fields_unavailable',
  type: 'api_connection',
  message: 'The card fields could not be loaded.',
};

/** `tokenize()` before the fields are ready, or after `destroy()`. */
export const NOT_READY: TesseraErrorShape = {
  code: 'not_ready',
  type: 'invalid_request',
  message: 'The card fields are not mounted and ready.',
};

/** A `TesseraError`: an `Error` that carries the shape's code, type, message and param. */
export const toError = (shape: TesseraErrorShape): Error & TesseraErrorShape & { name: 'TesseraError' } =>
  Object.assign(new Error(shape.message), shape, { name: 'TesseraError' as const });
