/**
 * Applies the merchant's `style` option. Values go through `sanitizeStyle` and
 * then into a constructable stylesheet one property at a time through the
 * CSSOM, so no merchant text is ever parsed as a stylesheet (and the CSP needs
 * no 'unsafe-inline').
 */
import { cssPropertyName, sanitizeStyle, type StyleProperty, type StyleState } from '../shared/styles.ts';

/** Where each state applies in the fields' markup. */
const SELECTORS: Record<StyleState, string> = {
  base: 'input:not([type])',
  complete: 'input.complete',
  empty: 'input.empty',
  invalid: 'input[aria-invalid=true]',
  focus: 'input:focus',
  placeholder: 'input::placeholder',
};

/** Base properties that labels and messages follow too, so the whole form matches the merchant's text. */
const INHERITED: readonly StyleProperty[] = ['color', 'fontFamily'];

const warn = (state: string, property: string, reason: string): void =>
  console.warn(`Tessera: style.${state}.${property} was ignored (${reason}).`);

export function merchantStyleSheet(style: unknown): CSSStyleSheet {
  const sheet = new CSSStyleSheet();
  const { style: safe, rejected } = sanitizeStyle(style);
  for (const { state, property, reason } of rejected) warn(state, property, reason);
  const rule = (selector: string) => sheet.cssRules[sheet.insertRule(`${selector}{}`, sheet.cssRules.length)] as CSSStyleRule;
  for (const [state, rules] of Object.entries(safe) as Array<[StyleState, Record<StyleProperty, string>]>) {
    const target = rule(SELECTORS[state]);
    const host = state === 'base' ? rule('tessera-fields') : undefined;
    for (const [property, value] of Object.entries(rules) as Array<[StyleProperty, string]>) {
      const name = cssPropertyName(property);
      target.style.setProperty(name, value);
      // The browser drops what it cannot parse (`color: banana`); say so rather than fail silently.
      if (!target.style.getPropertyValue(name)) warn(state, property, 'invalid_value');
      if (host && INHERITED.includes(property)) host.style.setProperty(name, value);
    }
  }
  return sheet;
}
