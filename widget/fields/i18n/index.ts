/**
 * The fields' locales, how a requested locale maps to one of them, and how
 * its texts arrive. English is in the entry bundle; every other locale is a
 * chunk of its own, loaded only for a shopper who reads it, and never waited
 * for before `ready` (see `main.ts`).
 */
import { en, type Messages } from './en.ts';
import { LOCALES, RTL, type LocaleTag } from './locales.ts';

export type { LocaleTag, Messages };
export { LOCALES };

const LOADERS: Record<Exclude<LocaleTag, 'en'>, () => Promise<Messages>> = {
  ar: () => import('./ar.ts').then((module) => module.ar),
  de: () => import('./de.ts').then((module) => module.de),
  es: () => import('./es.ts').then((module) => module.es),
  fr: () => import('./fr.ts').then((module) => module.fr),
  he: () => import('./he.ts').then((module) => module.he),
  it: () => import('./it.ts').then((module) => module.it),
  ja: () => import('./ja.ts').then((module) => module.ja),
  nl: () => import('./nl.ts').then((module) => module.nl),
  pt: () => import('./pt.ts').then((module) => module.pt),
};

export interface Locale {
  lang: LocaleTag;
  dir: 'ltr' | 'rtl';
  messages: Messages;
}

const isLocaleTag = (tag: string): tag is LocaleTag => (LOCALES as readonly string[]).includes(tag);

/**
 * The locale for a BCP 47 tag, by its language (`fr-CA` → `fr`), or English.
 * `auto` takes the first of the shopper's languages (`navigator.languages`,
 * most preferred first) that the fields speak.
 */
export function resolveLocale(requested = 'auto', languages: readonly string[] = navigator.languages): LocaleTag {
  const wanted = requested === 'auto' ? languages : [requested];
  return wanted.map((tag) => tag.toLowerCase().split('-')[0]!).find(isLocaleTag) ?? 'en';
}

/** A locale's texts in English's key order as its object; built locale chunks carry their texts only (see vite.config.ts). */
export const localeFromTexts = (texts: string[]): Messages => Object.fromEntries(Object.keys(en).map((key, i) => [key, texts[i]])) as Messages;

const loaded = new Map<LocaleTag, Messages>([['en', en]]);

/** A locale whose texts are here already (English always is). */
export function loadedLocale(lang: LocaleTag): Locale | undefined {
  const messages = loaded.get(lang);
  return messages && { lang, dir: RTL.includes(lang) ? 'rtl' : 'ltr', messages };
}

/** A locale's texts, loading them if need be; English, with its own `lang`, when they cannot be loaded. */
export async function loadLocale(lang: LocaleTag): Promise<Locale> {
  try {
    if (!loaded.has(lang)) loaded.set(lang, await LOADERS[lang as Exclude<LocaleTag, 'en'>]());
    return loadedLocale(lang)!;
  } catch {
    return loadedLocale('en')!;
  }
}
