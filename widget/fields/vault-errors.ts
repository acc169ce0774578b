/**
 * How the vault's refusals show in the fields, in the shopper's language:
 * under the field they are about, or as one message for the whole card. The
 * merchant page gets the vault's own error; the shopper never reads the
 * vault's English message, only the fields' text for its code.
 */
import type { FieldErrorCode, FieldName } from '../shared/constants.ts';
import type { TesseraErrorShape } from '../shared/messages.ts';
import type { CardProblem } from './card-fields.ts';

/** Vault error codes that are about one field, and the message to show there. */
const FIELD_ERRORS: Record<string, [FieldName, FieldErrorCode]> = {
  invalid_card_number: ['number', 'invalid_number'],
  invalid_expiry: ['expiry', 'invalid_expiry_month'],
  card_expired: ['expiry', 'expiry_in_past'],
  invalid_cvc: ['cvc', 'incomplete_cvc'],
  // Generic on purpose: the shopper learns only that another card is needed, never why (a duplicate, say).
  card_not_accepted: ['number', 'card_not_accepted'],
};

/** Vault error codes about the whole card that have a message of their own; any other shows `failed`. */
const CARD_ERRORS: Record<string, CardProblem> = {
  network_error: 'network_error',
  unavailable: 'network_error',
  rate_limited: 'rate_limited',
};

/** Where and how to show a vault error; `card_number_not_allowed` names its field in `param` (a card number in the name, say). */
export function displayOf({ code, param }: TesseraErrorShape): [FieldName, FieldErrorCode] | CardProblem {
  if (code === 'card_number_not_allowed' && (param === 'name' || param === 'postal_code')) return [param, code];
  return (Object.hasOwn(FIELD_ERRORS, code) && FIELD_ERRORS[code]) || (Object.hasOwn(CARD_ERRORS, code) && CARD_ERRORS[code]) || 'failed';
}
