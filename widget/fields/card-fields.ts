/**
 * `<tessera-fields>`: the card form inside the vault's iframe. It formats and
 * checks what the shopper types and hands the card over only through
 * `collect()`; what leaves it otherwise is state (`change`, `focus`, `blur`).
 *
 * A plain custom element rendered with Lit's templates (`lit/html.js`), not a
 * LitElement: every property is set by `main.ts`, which then asks for a
 * render, so ReactiveElement's property machinery (2.6 KB of the 14 KB the
 * fields may load before `ready`) would do nothing here. It renders into the
 * light DOM: the iframe already isolates it from the merchant page, and
 * browsers' card autofill does not see inputs inside a shadow root.
 *
 * The typing rules (brands, spacing, checks) are not needed to draw an empty
 * form, so they load after `ready` (`loadRules`); input that comes before
 * them waits for them.
 */
import { html, nothing, render, type TemplateResult } from 'lit/html.js';
import type { CardBrand } from '../shared/brands.ts';
import type { FieldErrorCode, FieldName } from '../shared/constants.ts';
import { VALIDATION_ERROR } from '../shared/errors.ts';
import type { CardMode, ChangeState, FrameToParentMessage, SaveCard, TesseraErrorShape } from '../shared/messages.ts';
import { plainCard } from './brand-icon.ts';
import type { BrandRule } from './card-brands.ts';
import type { CardPlaintext } from './encrypt.ts';
import { en, type Messages } from './i18n/en.ts';
import { loadRules } from './lazy.ts';
import type { Rules } from './rules.ts';

/** The card as the vault will receive it, and whether the shopper wants it kept. */
export interface CollectedCard {
  card: CardPlaintext;
  reusable: boolean;
  /** Keyed in by a merchant's agent (moto mode): the vault makes a single-use token for MOTO payments only. */
  moto?: boolean;
}

/** State reports for the merchant page; the bridge forwards them over the port. */
export type CardReport = Extract<FrameToParentMessage, { type: 'change' | 'focus' | 'blur' }>;

/** A problem with the whole card, shown under the form: the vault out of reach, too many attempts, or any other refusal. */
export type CardProblem = 'network_error' | 'rate_limited' | 'failed';

type TextField = 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode';

export class CardFields extends HTMLElement {
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

  /** Receives every state change, focus and blur, never card data; set by `startReporting`. */
  private report: (message: CardReport) => void = () => {};

  /** Called when the shopper presses Enter in a field. */
  submit: () => void = () => {};

  /** The typing rules, once loaded. */
  private rules: Rules | undefined;
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
  private rendering: Promise<void> | undefined;

  /**
   * From now on every state change, focus and blur goes to `report`, starting
   * with the state as it is (after `ready`, and again after the browser
   * reloaded the frame: the merchant page learns the card is empty).
   */
  startReporting(report: (message: CardReport) => void): void {
    this.report = report;
    this.lastState = '';
    this.reportState();
  }

  /** Renders once, in a microtask, however often state changed before it; resolves when it has rendered. */
  requestUpdate(): Promise<void> {
    return (this.rendering ??= Promise.resolve().then(() => {
      this.rendering = undefined;
      render(this.template(), this, { host: this });
      this.reportState();
    }));
  }

  /** The typing rules, loaded once; everything that reads what the shopper typed waits for them. */
  async loadRules(): Promise<Rules> {
    if (!this.rules) {
      this.rules = await loadRules();
      void this.requestUpdate();
    }
    return this.rules;
  }

  /** Shows every error and returns the card, or the first error after moving focus to its field. Needs the rules loaded. */
  collect(): CollectedCard | { error: TesseraErrorShape } {
    const errors = this.errors();
    this.shown = Object.fromEntries(errors);
    this.alert = '';
    void this.requestUpdate();
    const first = errors[0];
    if (first) {
      const message = this.messages[first[1]];
      this.announce(message);
      this.focusField(first[0]);
      return { error: { ...VALIDATION_ERROR, message, param: first[0] } };
    }
    return this.read()!;
  }

  /** The card as typed if it is complete, showing nothing: what the tokenizer encrypts ahead while the shopper types. */
  read(): CollectedCard | undefined {
    const rules = this.rules;
    if (!rules || this.errors().length) return;
    const expiry = rules.parseExpiry(this.expiry);
    const card: CardPlaintext =
      this.mode === 'cvc'
        ? { cvc: this.cvc }
        : {
            number: rules.digitsOnly(this.number),
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

  /** Shows why the vault refused the card or could not be reached: under the field it is about, or for the whole card. */
  showProblem(problem: [FieldName, FieldErrorCode] | CardProblem): void {
    if (Array.isArray(problem)) {
      this.shown = { ...this.shown, [problem[0]]: problem[1] };
      this.announce(this.messages[problem[1]]);
    } else {
      this.alert = this.messages[problem];
      this.announce(this.alert);
    }
  }

  /** Puts `message` in the live region, for screen readers to read out. */
  announce(message: string): void {
    this.announcement = this.announcement === message ? `${message}\u00a0` : message;
    void this.requestUpdate();
  }

  focusField(field?: FieldName): void {
    this.querySelector<HTMLInputElement>(field ? `#${field}` : 'input')?.focus();
  }

  clear(): void {
    this.number = this.expiry = this.cvc = this.name = this.postalCode = this.alert = '';
    this.save = false;
    this.shown = {};
    void this.requestUpdate();
  }

  /** The brand rule in force: the saved card's in CVC mode, else the one the number shows. */
  private brandRule(): BrandRule | undefined {
    const rules = this.rules;
    return !rules
      ? undefined
      : this.mode === 'cvc'
        ? rules.BRAND_RULES.find((rule) => rule.brand === this.savedBrand)
        : rules.detectBrand(rules.digitsOnly(this.number));
  }

  /** The brand's mark, once the rules (which draw the marks) are here. */
  private icon(brand: CardBrand | undefined): TemplateResult {
    return this.rules ? this.rules.brandIcon(brand) : plainCard(brand);
  }

  /** The fields on display, in tab order. */
  private fields(): FieldName[] {
    const fields: FieldName[] = this.mode === 'cvc' ? ['cvc'] : ['number', 'expiry', 'cvc'];
    if (this.mode !== 'cvc' && this.collectName) fields.unshift('name');
    if (this.mode !== 'cvc' && this.collectPostalCode) fields.push('postal_code');
    return fields;
  }

  /** What is wrong with a field (nothing to say before the rules load: no field has been typed in yet). */
  private error(field: FieldName): FieldErrorCode | undefined {
    const rules = this.rules;
    if (!rules) return undefined;
    const rule = this.brandRule();
    switch (field) {
      case 'number':
        return rules.numberError(rules.digitsOnly(this.number), rule ?? rules.UNKNOWN_BRAND);
      case 'expiry':
        return rules.expiryError(this.expiry);
      case 'cvc':
        // The agent may not have been given one.
        if (this.mode === 'moto' && !this.cvc) return undefined;
        return rules.cvcError(this.cvc, rule ? [rule.cvcLength] : [3, 4]);
      case 'name':
        return rules.nameError(this.name);
      case 'postal_code':
        return rules.postalCodeError(this.postalCode);
    }
  }

  private errors(): Array<[FieldName, FieldErrorCode]> {
    return this.fields().flatMap((field) => {
      const code = this.error(field);
      return code ? [[field, code] as [FieldName, FieldErrorCode]] : [];
    });
  }

  private reportState(): void {
    const shownField = this.fields().find((field) => this.shown[field]);
    const state: ChangeState = {
      complete: !!this.rules && this.errors().length === 0,
      empty: !(this.number || this.expiry || this.cvc || this.name || this.postalCode),
      brand: this.mode === 'cvc' ? (this.savedBrand ?? null) : (this.brandRule()?.brand ?? null),
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

  /** An input handler that runs once the typing rules are there: at once after the first load, later only for input that beat them. */
  private withRules(handler: (event: InputEvent, rules: Rules) => void): (event: InputEvent) => void {
    return (event) => {
      if (this.rules) handler.call(this, event, this.rules);
      else void this.loadRules().then((rules) => handler.call(this, event, rules));
    };
  }

  private readonly onNumberInput = this.withRules((event, rules) => {
    const input = event.target as HTMLInputElement;
    const caretDigits = rules.digitsOnly(input.value.slice(0, input.selectionStart ?? undefined)).length;
    const formatted = rules.formatCardNumberInput(input.value);
    this.edit('number', formatted, input);
    const caret = rules.caretAfterDigits(formatted, caretDigits);
    input.setSelectionRange(caret, caret);
    const count = rules.digitsOnly(formatted).length;
    // Most cards are 16 digits; only the longest length is certain to be the end of any other.
    this.advance('number', event, count === 16 || count === Math.max(...(this.brandRule() ?? rules.UNKNOWN_BRAND).lengths));
  });

  private readonly onExpiryInput = this.withRules((event, rules) => {
    const input = event.target as HTMLInputElement;
    this.edit('expiry', rules.formatExpiry(input.value, /^delete/.test(event.inputType)), input);
    this.advance('expiry', event, rules.digitsOnly(this.expiry).length === 4);
  });

  private readonly onCvcInput = this.withRules((event, rules) => {
    const input = event.target as HTMLInputElement;
    const rule = this.brandRule();
    this.edit('cvc', rules.digitsOnly(input.value).slice(0, rule?.cvcLength ?? 4), input);
    this.advance('cvc', event, this.cvc.length === rule?.cvcLength);
  });

  private textInput(field: 'name' | 'postalCode'): (event: InputEvent) => void {
    return this.withRules((event) => {
      const input = event.target as HTMLInputElement;
      this.edit(field, input.value, input);
    });
  }

  /** Stores a field's new value; writing the input first keeps the caret where the shopper put it. */
  private edit(field: TextField, value: string, input: HTMLInputElement): void {
    input.value = value;
    this[field] = value;
    this.alert = '';
    const name: FieldName = field === 'postalCode' ? 'postal_code' : field;
    if (this.shown[name]) this.shown = { ...this.shown, [name]: undefined };
    void this.requestUpdate();
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

  /**
   * Leaving a filled-in field is when its errors show; an empty one waits
   * for submit, and keeps what submit showed (focus leaves it for the first
   * field in error).
   */
  private onBlur(field: FieldName, value: string): void {
    this.report({ type: 'blur', field });
    if (!value) return;
    const code = this.error(field);
    this.shown = { ...this.shown, [field]: code };
    if (code) this.announce(this.messages[code]);
    void this.requestUpdate();
  }

  private onKeydown(event: KeyboardEvent): void {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    this.submit();
  }

  private onSaveChange(event: Event): void {
    this.save = (event.target as HTMLInputElement).checked;
  }

  /*
   * Values are bound as properties and written to the input by `edit()` as
   * the shopper types, so a render only ever sets the value the input
   * already shows, or a new one (`clear()`): no `live()` directive needed.
   */
  private field(
    field: FieldName,
    label: string,
    value: string,
    onInput: (event: InputEvent) => void,
    options: { autocomplete: string; numeric?: boolean; placeholder?: string; after?: TemplateResult },
  ): TemplateResult {
    const error = this.shown[field];
    const complete = value && !this.error(field);
    const input = html`<input
        id=${field}
        class=${complete ? 'complete' : value ? '' : 'empty'}
        autocomplete=${this.mode === 'moto' ? 'off' : options.autocomplete}
        inputmode=${options.numeric ? 'numeric' : nothing}
        dir=${options.numeric ? 'ltr' : nothing}
        placeholder=${options.placeholder ?? nothing}
        spellcheck="false"
        aria-invalid=${error ? 'true' : 'false'}
        aria-describedby=${error ? `${field}-error` : nothing}
        .value=${value}
        @input=${onInput}
        @focus=${() => this.onFocus(field)}
        @blur=${() => this.onBlur(field, value)}
        @keydown=${this.onKeydown}
      />`;
    return html`<div class="f">
      <label for=${field}>${label}</label>
      ${options.after ? html`<div class="i">${input}${options.after}</div>` : input}
      <p id="${field}-error" class="e">${error ? this.messages[error] : ''}</p>
    </div>`;
  }

  private template(): TemplateResult {
    const m = this.messages;
    const rule = this.brandRule();
    const cvcOnly = this.mode === 'cvc';
    const cvc = this.field('cvc', this.mode === 'moto' ? m.cvcOptional : m.cvc, this.cvc, this.onCvcInput, {
      autocomplete: 'cc-csc',
      numeric: true,
      // The saved card's length is known before the rules load: only American Express has four digits.
      placeholder: (cvcOnly ? this.savedBrand === 'american-express' : rule?.cvcLength === 4) ? '1234' : '123',
    });
    return html`<fieldset>
      <legend>${cvcOnly ? m.cvcLegend : this.mode === 'signup' ? m.signupLegend : this.mode === 'moto' ? m.motoLegend : m.paymentLegend}</legend>
      ${cvcOnly
        ? html`<p>${this.icon(this.savedBrand)} ${m.cardEnding} <span dir="ltr">•••• ${this.savedLast4 ?? ''}</span></p>
            ${cvc}`
        : html`${this.collectName
              ? this.field('name', m.name, this.name, this.textInput('name'), { autocomplete: 'cc-name' })
              : nothing}
            ${this.field('number', m.number, this.number, this.onNumberInput, {
              autocomplete: 'cc-number',
              numeric: true,
              placeholder: '1234 1234 1234 1234',
              after: this.icon(rule?.brand),
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
            ><input type="checkbox" .checked=${this.save} @change=${this.onSaveChange} @keydown=${this.onKeydown} />${m.saveCard}</label
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
