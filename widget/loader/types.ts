/**
 * The merchant-facing API of checkout.js and tessera.mjs, types only. It
 * re-uses the protocol's data shapes, so what the merchant page receives is
 * exactly what the fields send.
 */
import type { FieldName } from '../shared/constants.ts';
import type {
  CardOptions,
  ChangeState,
  CvcResult,
  TesseraErrorShape,
  TokenResult,
} from '../shared/messages.ts';

export type {
  CardBrand,
} from '../shared/brands.ts';
export type { FieldName } from '../shared/constants.ts';
export type {
  CardMetadata,
  CardMode,
  CardOptions,
  ColorScheme,
  CvcResult,
  FieldError,
  SaveCard,
  TokenResult,
} from '../shared/messages.ts';
export type { CardStyle, StyleRules } from '../shared/styles.ts';

/** How every failure reaches the merchant: `tokenize()` rejects with it and the `error` event carries it. */
export interface TesseraError extends Error, TesseraErrorShape {
  name: 'TesseraError';
}

/** State of the card form; never values, lengths or keystrokes. */
export type CardChangeEvent = ChangeState;

export interface CardFieldEvent {
  field: FieldName;
}

export interface CardResizeEvent {
  /** The fields' height in CSS pixels; the loader has already applied it to the iframe. */
  height: number;
}

/**
 * The shopper pressed Enter in the fields, which tokenized the card
 * themselves: act on it as on a resolved or rejected `tokenize()` (a
 * `tokenize()` called meanwhile gets the same result, not a second token).
 */
export type CardSubmitEvent = { ok: true; value: TokenResult | CvcResult } | { ok: false; error: TesseraError };

/** Event name → what its handlers receive. */
export interface CardEventMap {
  ready: undefined;
  change: CardChangeEvent;
  focus: CardFieldEvent;
  blur: CardFieldEvent;
  resize: CardResizeEvent;
  submit: CardSubmitEvent;
  error: TesseraError;
}

export type CardEventType = keyof CardEventMap;

export interface Card {
  /** Puts the fields into the element (a selector, or any Element, also inside a shadow root). */
  mount(target: string | Element): Card;
  on(type: 'ready', handler: () => void): Card;
  on(type: 'change', handler: (event: CardChangeEvent) => void): Card;
  on(type: 'focus' | 'blur', handler: (event: CardFieldEvent) => void): Card;
  on(type: 'resize', handler: (event: CardResizeEvent) => void): Card;
  on(type: 'submit', handler: (event: CardSubmitEvent) => void): Card;
  on(type: 'error', handler: (error: TesseraError) => void): Card;
  off<T extends CardEventType>(type: T, handler: (event: CardEventMap[T]) => void): Card;
  /** Changes options after mounting; only the keys given change. */
  update(options: CardOptions): Card;
  focus(field?: FieldName): Card;
  clear(): Card;
  /**
   * Encrypts the card in the fields and creates a token (payment, signup) or
   * a CVC handle (cvc mode). Rejects with a `TesseraError`: `validation_error`
   * (with `param`), `network_error` (the fields stay usable; retry), the
   * vault's own errors, `fields_unavailable` or the load error, `not_ready`.
   */
  tokenize(): Promise<TokenResult | CvcResult>;
  /** Removes the iframe and rejects any pending `tokenize()`. */
  destroy(): void;
}

export interface Tessera {
  card(options?: CardOptions): Card;
}

/** `Tessera(publishableKey)`; the vault is the origin checkout.js was loaded from. */
export type TesseraStatic = (publishableKey: string) => Tessera;

/**
 * `<tessera-card publishable-key="pk_…" mode="signup">`: the same card as a
 * light custom element, defined by tessera.mjs's `loadTessera()`.
 * Attributes: `publishable-key` (read when the element is connected), and
 * the options `mode`, `save-card`, `customer`, `locale`, `token`, `brand`,
 * `last4` and the booleans `collect-name` and `collect-postal-code`, whose
 * changes update the card. Events are the card's, prefixed: `tessera-change`
 * etc., with the payload in `detail`.
 */
export interface TesseraCardElement extends HTMLElement {
  /** The underlying card, once connected (for `update()` with a `style`, say). */
  readonly card: Card | undefined;
  tokenize(): Promise<TokenResult | CvcResult>;
}

type TesseraCardEvents = { [T in CardEventType as `tessera-${T}`]: CustomEvent<CardEventMap[T]> };

declare global {
  interface Window {
    Tessera?: TesseraStatic;
  }
  interface HTMLElementTagNameMap {
    'tessera-card': TesseraCardElement;
  }
  interface HTMLElementEventMap extends TesseraCardEvents {}
}
