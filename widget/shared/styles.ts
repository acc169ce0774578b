/**
 * Merchant styling is data, not CSS: a map of states to camelCase property →
 * value. The iframe applies only the properties listed here, and only values
 * that pass the checks below; everything else is dropped with a console
 * warning. The lists are plain data so they can be reviewed in one place.
 */

export const STYLE_STATES = ['base', 'complete', 'empty', 'invalid', 'focus', 'placeholder'] as const;
export type StyleState = (typeof STYLE_STATES)[number];

export const ALLOWED_STYLE_PROPERTIES = [
  'color',
  'backgroundColor',
  'caretColor',
  'fontFamily',
  'fontSize',
  'fontStyle',
  'fontVariant',
  'fontWeight',
  'letterSpacing',
  'lineHeight',
  'padding',
  'textAlign',
  'textDecoration',
  'textShadow',
  'textTransform',
  'transition',
  'borderColor',
  'borderRadius',
  'borderWidth',
  'outlineColor',
  'accentColor',
] as const;
export type StyleProperty = (typeof ALLOWED_STYLE_PROPERTIES)[number];

export type StyleRules = Partial<Record<StyleProperty, string>>;
export type CardStyle = Partial<Record<StyleState, StyleRules>>;

/**
 * Substrings (case-insensitive) that make a value unsafe: they could load a
 * resource, run script (old IE `expression`), or break out of the declaration.
 */
export const FORBIDDEN_STYLE_VALUE_PARTS = [
  'url(',
  '@import',
  'expression',
  'javascript:',
  ';',
  '{',
  '}',
  '<',
  '>',
  '\\',
  'image-set(',
  'image(',
  'attr(',
  'var(',
  'env(',
  '/*',
] as const;

/** Longest value accepted; real style values are short. */
export const MAX_STYLE_VALUE_LENGTH = 200;

/** Only characters that occur in colours, lengths, font names and shadows. */
export const STYLE_VALUE_PATTERN = /^[a-zA-Z0-9#%.,()'" +\-_/]*$/;

export interface StyleRejection {
  state: string;
  property: string;
  reason: 'unknown_state' | 'unknown_property' | 'forbidden_value' | 'not_a_string';
}

export interface SanitizedStyle {
  style: CardStyle;
  rejected: StyleRejection[];
}

const kebab = (property: string): string => property.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The CSS property name for an allowed camelCase property (`fontSize` → `font-size`). */
export function cssPropertyName(property: StyleProperty): string {
  return kebab(property);
}

export function isSafeStyleValue(value: string): boolean {
  if (value.length === 0 || value.length > MAX_STYLE_VALUE_LENGTH) return false;
  const lower = value.toLowerCase();
  if (FORBIDDEN_STYLE_VALUE_PARTS.some((part) => lower.includes(part))) return false;
  return STYLE_VALUE_PATTERN.test(value);
}

/**
 * Keeps the allowed, safe entries of an untrusted style object and reports
 * every entry it dropped (by state and property name only, never the value).
 */
export function sanitizeStyle(input: unknown): SanitizedStyle {
  const style: CardStyle = {};
  const rejected: StyleRejection[] = [];
  if (input === null || typeof input !== 'object') return { style, rejected };
  for (const [state, rules] of Object.entries(input)) {
    if (!(STYLE_STATES as readonly string[]).includes(state)) {
      rejected.push({ state, property: '*', reason: 'unknown_state' });
      continue;
    }
    if (rules === null || typeof rules !== 'object') {
      rejected.push({ state, property: '*', reason: 'not_a_string' });
      continue;
    }
    const kept: StyleRules = {};
    for (const [property, value] of Object.entries(rules)) {
      if (!(ALLOWED_STYLE_PROPERTIES as readonly string[]).includes(property)) {
        rejected.push({ state, property, reason: 'unknown_property' });
      } else if (typeof value !== 'string') {
        rejected.push({ state, property, reason: 'not_a_string' });
      } else if (!isSafeStyleValue(value)) {
        rejected.push({ state, property, reason: 'forbidden_value' });
      } else {
        kept[property as StyleProperty] = value;
      }
    }
    style[state as StyleState] = kept;
  }
  return { style, rejected };
}
