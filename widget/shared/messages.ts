/**
 * Every message that crosses between the merchant page (loader) and the fields
 * iframe, in one place. The loader checks shapes with plain code (it has no
 * dependencies); the iframe checks them with zod/mini schemas that are typed
 * against these unions (see `widget/fields/messages.ts`).
 *
 * Flow:
 *  1. iframe → parent window: `tessera:hello` (targetOrigin = the parent origin
 *     the vault confirmed), carrying the channel id from the iframe URL hash.
 *  2. parent → iframe window: `tessera:init` (targetOrigin = the vault origin)
 *     with the card options and a transferred `MessagePort`.
 *  3. Everything after that travels over the port.
 *
 * Rule: nothing sent to the merchant page carries a card number, CVC, BIN,
 * digit counts or keystrokes — only token name, brand, last 4, expiry and
 * state flags.
 */
import type { CardBrand } from './brands.ts';
import type { FieldName } from './constants.ts';
import type { CardStyle } from './styles.ts';

export const PROTOCOL_VERSION = 1;

/** `moto`: a merchant's agent keys in a card taken by phone or mail (single-use token, MOTO payments only). */
export type CardMode = 'payment' | 'signup' | 'cvc' | 'moto';
export type SaveCard = 'optional' | 'always' | 'never';
/**
 * The host page's colour scheme where the card is mounted. The fields must use
 * the same one: an iframe whose `color-scheme` differs from its embedder's is
 * painted on an opaque canvas instead of a transparent one.
 */
export type ColorScheme = 'light' | 'dark';

/** Options the merchant passes to `tessera.card(options)`; all data, no functions. */
export interface CardOptions {
  mode?: CardMode;
  /** Payment mode only: whether the "save card" checkbox is shown, forced on or off. */
  saveCard?: SaveCard;
  /** Stored on the token; never shown in the iframe. */
  customer?: string;
  fields?: { name?: boolean; postalCode?: boolean };
  style?: CardStyle;
  /** `auto` follows the shopper's browser; otherwise a BCP 47 tag such as `fr` or `ar`. */
  locale?: string;
  /** Defaults to the colour scheme the loader reads from the mount container. */
  colorScheme?: ColorScheme;
  /** CVC mode: the saved token whose CVC is re-collected, and what to show for it. */
  token?: string;
  brand?: CardBrand;
  last4?: string;
}

/** The harmless card metadata the merchant page may see. */
export interface CardMetadata {
  brand: CardBrand;
  last4: string;
  exp_month: number;
  exp_year: number;
}

export interface TokenResult {
  token: string;
  reusable: boolean;
  card: CardMetadata;
}

/** CVC mode: an opaque handle (a JWE to the vault key) for `POST /v1/payments` `cvc`. */
export interface CvcResult {
  cvc: string;
}

export interface FieldError {
  code: string;
  message: string;
  /** The field at fault, for validation errors. */
  param?: FieldName;
}

export interface TesseraErrorShape {
  code: string;
  type: string;
  message: string;
  param?: string;
}

// ── window messages (before the port) ────────────────────────────────────────

export interface HelloMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'tessera:hello';
  channel: string;
}

export interface InitMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'tessera:init';
  channel: string;
  options: CardOptions;
}

export type FrameToParentWindowMessage = HelloMessage;
export type ParentToFrameWindowMessage = InitMessage;

// ── port messages: merchant page → iframe ────────────────────────────────────

export type ParentToFrameMessage =
  | { type: 'update'; options: CardOptions }
  | { type: 'tokenize'; id: number }
  | { type: 'focus'; field?: FieldName }
  | { type: 'clear' };

// ── port messages: iframe → merchant page ────────────────────────────────────

export interface ChangeState {
  complete: boolean;
  empty: boolean;
  brand: CardBrand | null;
  error: FieldError | null;
}

export type FrameToParentMessage =
  | { type: 'ready' }
  | ({ type: 'change' } & ChangeState)
  | { type: 'focus'; field: FieldName }
  | { type: 'blur'; field: FieldName }
  | { type: 'resize'; height: number }
  | { type: 'result'; id: number; ok: true; value: TokenResult | CvcResult }
  | { type: 'result'; id: number; ok: false; error: TesseraErrorShape };

/**
 * `result.id` of a tokenization the shopper started by pressing Enter in the
 * fields rather than the merchant page calling `tokenize()`; the loader
 * reports it as a `submit` event.
 */
export const SHOPPER_SUBMIT_ID = 0;

export type MessageType =
  | FrameToParentWindowMessage['type']
  | ParentToFrameWindowMessage['type']
  | ParentToFrameMessage['type']
  | FrameToParentMessage['type'];
