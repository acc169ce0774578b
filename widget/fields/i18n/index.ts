/** The fields' locales and how a requested locale maps to one of them. */
import { ar } from './ar.ts';
import { en, type Messages } from './en.ts';
import { fr } from './fr.ts';

export type { Messages };

export const LOCALES: Readonly<Record<string, Messages>> = { en, fr, ar };

/** Locales written right to left. */
const RTL = ['ar'];

export interface Locale {
  lang: string;
  dir: 'ltr' | 'rtl';
  messages: Messages;
}

/**
 * The locale for a BCP 47 tag, by its language (`fr-CA` → `fr`); `auto`
 * follows the shopper's browser, and anything unknown falls back to English.
 */
export function resolveLocale(requested = 'auto', browser = navigator.language): Locale {
  const tag = (requested === 'auto' ? browser : requested).toLowerCase().split('-')[0]!;
  const lang = Object.hasOwn(LOCALES, tag) ? tag : 'en';
  return { lang, dir: RTL.includes(lang) ? 'rtl' : 'ltr', messages: LOCALES[lang]! };
}
