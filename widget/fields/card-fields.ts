/**
 * `<tessera-fields>`: the card form inside the vault's iframe. It formats and
 * checks what the shopper types and hands the card over only through
 * `collect()`; what leaves it otherwise is state (`change`, `focus`, `blur`).
 *
 * It renders into the light DOM: the iframe already isolates it from the
 * merchant page, and browsers' card autofill does not see inputs inside a
 * shadow root.
 */
import { html, LitElement, nothing, type PropertyValues, type TemplateResult } from 'lit';
import { live } from 'lit/directives/live.js';
import type { CardBrand } from '../shared/brands.ts';
import type { FieldErrorCode, FieldName } from '../shared/constants.ts';
import { VALIDATION_ERROR } from '../shared/errors.ts';
import type { CardMode, ChangeState, FrameToParentMessage, SaveCard, TesseraErrorShape } from '../shared/messages.ts';
import { brandIcon } from './brand-icon.ts';
import { BRAND_RULES, detectBrand, UNKNOWN_BRAND, type BrandRule } from './card-brands.ts';
import { caretAfterDigits, digitsOnly, formatCardNumberInput } from './card-number.ts';
import type { CardPlaintext } from './encrypt.ts';
import { formatExpiry, parseExpiry } from './expiry.ts';
import { en, type Messages } from './i18n/en.ts';
import { cvcError, expiryError, nameError, numberError, postalCodeError } from './validation.ts';

/** The card as the vault will receive it, and whether the shopper wants it kept. */
export interface CollectedCard {
  card: CardPlaintext;
  reusable: boolean;
  /** Keyed in by a merchant's agent (moto mode): the vault makes a single-use token for MOTO payments only. */
  moto?: boolean;
}

/** State reports for the merchant page; the bridge forwards them over the port. */
export type CardReport = Extract<FrameToParentMessage, { type: 'change' | 'focus' | 'blur' }>;

/** Vault error codes that are about one field, and the message to show there. */
const VAULT_FIELD_ERRORS: Record<string, [FieldName, FieldErrorCode]> = {
  invalid_card_number: ['number', 'invalid_number'],
  invalid_expiry: ['expiry', 'invalid_expiry_month'],
  card_expired: ['expiry', 'expiry_in_past'],
  invalid_cvc: ['cvc', 'incomplete_cvc'],
  // Generic on purpose: the shopper learns only that another card is needed, never why (a duplicate, say).
  card_not_accepted: ['number', 'card_not_accepted'],
};

/** The field a vault error is about: `card_number_not_allowed` names it in `param` (a card number in the name, say). */
function vaultFieldError({ code, param }: TesseraErrorShape): [FieldName, FieldErrorCode] | undefined {
  return code === 'card_number_not_allowed' && (param === 'name' || param === 'postal_code') ? [param, code] : VAULT_FIELD_ERRORS[code];
}

export class CardFields extends LitElement {
  /**
   * Reactive properties (`attribute: false`: set by `main.ts`, never from
   * markup) and internal state, declared here rather than with Lit's
   * decorators: the decorator helpers cost about 400 bytes of the fields'
   * 20 KB gzip budget.
   */
  static override properties = {
    mode: { attribute: false },
    saveCard: { attribute: false },
    collectName: { attribute: false },
    collectPostalCode: { attribute: false },
    savedBrand: { attribute: false },
    savedLast4: { attribute: false },
    messages: { attribute: false },
    number: { state: true },
    expiry: { state: true },
    cvc: { state: true },
    name: { state: true },
    postalCode: { state: true },
    save: { state: true },
    shown: { state: true },
    alert: { state: true },
    announcement: { state: true },
  };

  /**
   * `payment` collects a card to pay now, `signup` saves one, `cvc` re-collects only the CVC of a saved card,
   * `moto` takes a card a merchant's agent keys in (no autofill, no save box, the CVC optional).
   */
  mode: CardMode = 'payment';

  /** Payment mode: `optional` shows the "save this card" checkbox; `always` and `never` decide without asking. */
  saveCard: SaveCard = 'never';

  /** Whether to ask for the name on the card. */
  collectName = false;

  /** Whether to ask for the billing postal code. */
  collectPostalCode = false;

  /** CVC mode: the saved card's brand, shown read-only and deciding the CVC length. */
  savedBrand: CardBrand | undefined;

  /** CVC mode: the saved card's last four digits, shown read-only. */
  savedLast4: string | undefined;

  /** The shopper-facing texts, in the shopper's language. */
  messages: Messages = en;

  /** Receives every state change, focus and blur, never card data. */
  report: (message: CardReport) => void = () => {};

  /** Called when the shopper presses Enter in a field. */
  submit: () => void = () => {};

  private number = '';
  private expiry = '';
  private cvc = '';
  private name = '';
  private postalCode = '';
  private save = false;
  /** Errors on display: set on blur and on submit, cleared as soon as the shopper edits the field. */
  private shown: Partial<Record<FieldName, FieldErrorCode>> = {};
  /** A problem with the whole card, such as the vault being unreachable. */
  private alert = '';
  /** The one live region's text; alternates a trailing no-break space so a repeated message is announced again. */
  private announcement = '';

  private lastState = '';

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  /** Shows every error and returns the card, or the first error after moving focus to its field. */
  collect(): CollectedCard | { error: TesseraErrorShape } {
    const errors = this.errors();
    this.shown = Object.fromEntries(errors);
    this.alert = '';
    const first = errors[0];
    if (first) {
      const message = this.messages[first[1]];
      this.announce(message);
      this.focusField(first[0]);
      return { error: { ...VALIDATION_ERROR, message, param: first[0] } };
    }
    const expiry = parseExpiry(this.expiry);
    const card: CardPlaintext =
      this.mode === 'cvc'
        ? { cvc: this.cvc }
        : {
            number: digitsOnly(this.number),
            exp_month: expiry?.month,
            exp_year: expiry?.year,
            cvc: this.mode === 'moto' && !this.cvc ? undefined : this.cvc,
            name: this.collectName ? this.name.trim() : undefined,
            postal_code: this.collectPostalCode ? this.postalCode.trim() : undefined,
          };
    if (this.mode === 'moto') return { card, reusable: false, moto: true };
    const reusable = this.mode === 'signup' || this.saveCard === 'always' || (this.saveCard === 'optional' && this.save);
    return { card, reusable };
  }

  /** Shows why the vault refused the card or could not be reached. */
  showFailure(error: TesseraErrorShape): void {
    const fieldError = vaultFieldError(error);
    if (fieldError) {
      this.shown = { ...this.shown, [fieldError[0]]: fieldError[1] };
      this.announce(this.messages[fieldError[1]]);
    } else {
      this.alert = this.messages[error.code === 'network_error' ? 'network_error' : 'failed'];
      this.announce(this.alert);
    }
  }

  focusField(field?: FieldName): void {
    this.querySelector<HTMLInputElement>(field ? `#${field}` : 'input')?.focus();
  }

  clear(): void {
    this.number = this.expiry = this.cvc = this.name = this.postalCode = this.alert = '';
    this.save = false;
    this.shown = {};
  }

  /** The brand rule in force: the saved card's in CVC mode, else the one the number shows. */
  private brandRule(): BrandRule | undefined {
    return this.mode === 'cvc'
      ? BRAND_RULES.find((rule) => rule.brand === this.savedBrand)
      : detectBrand(digitsOnly(this.number));
  }

  /** The fields on display, in tab order. */
  private fields(): FieldName[] {
    const fields: FieldName[] = this.mode === 'cvc' ? ['cvc'] : ['number', 'expiry', 'cvc'];
    if (this.mode !== 'cvc' && this.collectName) fields.unshift('name');
    if (this.mode !== 'cvc' && this.collectPostalCode) fields.push('postal_code');
    return fields;
  }

  private error(field: FieldName): FieldErrorCode | undefined {
    const rule = this.brandRule();
    switch (field) {
      case 'number':
        return numberError(digitsOnly(this.number), rule ?? UNKNOWN_BRAND);
      case 'expiry':
        return expiryError(this.expiry);
      case 'cvc':
        // The agent may not have been given one.
        if (this.mode === 'moto' && !this.cvc) return undefined;
        return cvcError(this.cvc, rule ? [rule.cvcLength] : [3, 4]);
      case 'name':
        return nameError(this.name);
      case 'postal_code':
        return postalCodeError(this.postalCode);
    }
  }

  private errors(): Array<[FieldName, FieldErrorCode]> {
    return this.fields().flatMap((field) => {
      const code = this.error(field);
      return code ? [[field, code] as [FieldName, FieldErrorCode]] : [];
    });
  }

  private announce(message: string): void {
    this.announcement = this.announcement === message ? `${message}\u00a0` : message;
  }

  protected override updated(changed: PropertyValues): void {
    super.updated(changed);
    const shownField = this.fields().find((field) => this.shown[field]);
    const state: ChangeState = {
      complete: this.errors().length === 0,
      empty: !(this.number || this.expiry || this.cvc || this.name || this.postalCode),
      brand: this.brandRule()?.brand ?? null,
      error: shownField
        ? { code: this.shown[shownField]!, message: this.messages[this.shown[shownField]!], param: shownField }
        : null,
    };
    // Reported only when it changes, so the merchant page learns nothing about keystrokes.
    const serialized = JSON.stringify(state);
    if (serialized !== this.lastState) {
      this.lastState = serialized;
      this.report({ type: 'change', ...state });
    }
  }

  private onNumberInput(event: InputEvent): void {
    const input = event.target as HTMLInputElement;
    const caretDigits = digitsOnly(input.value.slice(0, input.selectionStart ?? undefined)).length;
    const formatted = formatCardNumberInput(input.value);
    this.edit('number', formatted, input);
    const caret = caretAfterDigits(formatted, caretDigits);
    input.setSelectionRange(caret, caret);
    const count = digitsOnly(formatted).length;
    // Most cards are 16 digits; only the longest length is certain to be the end of any other.
    this.advance('number', event, count === 16 || count === Math.max(...(this.brandRule() ?? UNKNOWN_BRAND).lengths));
  }

  private onExpiryInput(event: InputEvent): void {
    const input = event.target as HTMLInputElement;
    this.edit('expiry', formatExpiry(input.value, /^delete/.test(event.inputType)), input);
    this.advance('expiry', event, digitsOnly(this.expiry).length === 4);
  }

  private onCvcInput(event: InputEvent): void {
    const input = event.target as HTMLInputElement;
    const rule = this.brandRule();
    this.edit('cvc', digitsOnly(input.value).slice(0, rule?.cvcLength ?? 4), input);
    this.advance('cvc', event, this.cvc.length === rule?.cvcLength);
  }

  /** Stores a field's new value; writing the input first keeps the caret where the shopper put it. */
  private edit(field: 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode', value: string, input: HTMLInputElement): void {
    input.value = value;
    this[field] = value;
    this.alert = '';
    const name: FieldName = field === 'postalCode' ? 'postal_code' : field;
    if (this.shown[name]) this.shown = { ...this.shown, [name]: undefined };
  }

  /** Moves focus on once a field is complete and valid, if the shopper was typing at its end. */
  private advance(field: FieldName, event: InputEvent, complete: boolean): void {
    const input = event.target as HTMLInputElement;
    // Autofill and scripts fire plain `input` events without an `inputType`: no move then.
    if (!complete || !/^insert/.test(event.inputType) || input.selectionEnd !== input.value.length || this.error(field)) return;
    const fields = this.fields();
    const next = fields[fields.indexOf(field) + 1];
    if (next && next !== 'name') this.focusField(next);
  }

  private onFocus(field: FieldName): void {
    this.report({ type: 'focus', field });
  }

  /** Leaving a filled-in field is when its errors show; an empty one waits for submit. */
  private onBlur(field: FieldName, value: string): void {
    this.report({ type: 'blur', field });
    const code = value ? this.error(field) : undefined;
    this.shown = { ...this.shown, [field]: code };
    if (code) this.announce(this.messages[code]);
  }

  private onKeydown(event: KeyboardEvent): void {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    this.submit();
  }

  private field(
    field: FieldName,
    label: string,
    value: string,
    onInput: (event: InputEvent) => void,
    options: { autocomplete: string; numeric?: boolean; placeholder?: string; after?: TemplateResult },
  ): TemplateResult {
    const error = this.shown[field];
    const complete = value && !this.error(field);
    return html`<div class="f ${field === 'number' ? 'n' : ''}">
      <label for=${field}>${label}</label>
      <input
        id=${field}
        class=${complete ? 'complete' : value ? '' : 'empty'}
        autocomplete=${this.mode === 'moto' ? 'off' : options.autocomplete}
        inputmode=${options.numeric ? 'numeric' : nothing}
        dir=${options.numeric ? 'ltr' : nothing}
        placeholder=${options.placeholder ?? nothing}
        spellcheck="false"
        aria-invalid=${error ? 'true' : 'false'}
        aria-describedby=${error ? `${field}-error` : nothing}
        .value=${live(value)}
        @input=${onInput}
        @focus=${() => this.onFocus(field)}
        @blur=${() => this.onBlur(field, value)}
        @keydown=${this.onKeydown}
      />${options.after ?? nothing}
      <p id="${field}-error" class="e">${error ? this.messages[error] : ''}</p>
    </div>`;
  }

  private textInput(field: 'name' | 'postalCode'): (event: InputEvent) => void {
    return (event) => {
      const input = event.target as HTMLInputElement;
      this.edit(field, input.value, input);
    };
  }

  protected override render(): TemplateResult {
    const m = this.messages;
    const rule = this.brandRule();
    const cvcOnly = this.mode === 'cvc';
    const cvc = this.field('cvc', this.mode === 'moto' ? m.cvcOptional : m.cvc, this.cvc, this.onCvcInput, {
      autocomplete: 'cc-csc',
      numeric: true,
      placeholder: rule?.cvcLength === 4 ? '1234' : '123',
    });
    return html`<fieldset>
      <legend>${cvcOnly ? m.cvcLegend : this.mode === 'signup' ? m.signupLegend : this.mode === 'moto' ? m.motoLegend : m.paymentLegend}</legend>
      ${cvcOnly
        ? html`<p>${brandIcon(this.savedBrand)} ${m.cardEnding} <span dir="ltr">•••• ${this.savedLast4 ?? ''}</span></p>
            ${cvc}`
        : html`${this.collectName
              ? this.field('name', m.name, this.name, this.textInput('name'), { autocomplete: 'cc-name' })
              : nothing}
            ${this.field('number', m.number, this.number, this.onNumberInput, {
              autocomplete: 'cc-number',
              numeric: true,
              placeholder: '1234 1234 1234 1234',
              after: brandIcon(rule?.brand),
            })}
            <div class="row">
              ${this.field('expiry', m.expiry, this.expiry, this.onExpiryInput, {
                autocomplete: 'cc-exp',
                numeric: true,
                placeholder: m.expiryPlaceholder,
              })}
              ${cvc}
            </div>
            ${this.collectPostalCode
              ? this.field('postal_code', m.postalCode, this.postalCode, this.textInput('postalCode'), {
                  autocomplete: 'postal-code',
                })
              : nothing}`}
      ${this.mode === 'payment' && this.saveCard === 'optional'
        ? html`<label class="s"
            ><input type="checkbox" .checked=${live(this.save)} @change=${(event: Event) => {
              this.save = (event.target as HTMLInputElement).checked;
            }} @keydown=${this.onKeydown} />${m.saveCard}</label
          >`
        : nothing}
      ${this.mode === 'signup' ? html`<p>${m.signupNotice}</p>` : nothing}
      <p class="e">${this.alert}</p>
      <div class="vh" role="status">${this.announcement}</div>
    </fieldset>`;
  }
}

customElements.define('tessera-fields', CardFields);

declare global {
  interface HTMLElementTagNameMap {
    'tessera-fields': CardFields;
  }
}
