import { describe, expect, it } from 'vitest';
import { en } from '../../../widget/fields/i18n/en.ts';
import { LOCALES, loadLocale, loadedLocale, resolveLocale, type LocaleTag } from '../../../widget/fields/i18n/index.ts';
import { FIELD_ERROR_CODES } from '../../../widget/shared/constants.ts';

/** Every locale as the fields load it (through the same loaders as in the browser). */
const locales = await Promise.all(LOCALES.map((lang) => loadLocale(lang)));

describe('locales', () => {
  it('ships ten locales, two of them right to left', () => {
    expect([...LOCALES].sort()).toEqual(['ar', 'de', 'en', 'es', 'fr', 'he', 'it', 'ja', 'nl', 'pt']);
    expect(locales.filter((locale) => locale.dir === 'rtl').map((locale) => locale.lang)).toEqual(['ar', 'he']);
  });

  it.each(LOCALES)('%s loads as itself, not as the English fallback', (lang) => {
    expect(locales.find((locale) => locale.lang === lang)).toBeDefined();
  });

  it.each(locales.map((locale) => [locale.lang, locale.messages] as const))('%s has every English key and no other', (_lang, messages) => {
    expect(Object.keys(messages).sort()).toEqual(Object.keys(en).sort());
  });

  it.each(locales.map((locale) => [locale.lang, locale.messages] as const))('%s has no empty message', (_lang, messages) => {
    expect(Object.entries(messages).filter(([, message]) => !message.trim())).toEqual([]);
  });

  it.each(locales.filter((locale) => locale.lang !== 'en').map((locale) => [locale.lang, locale.messages] as const))(
    '%s translates every sentence (only placeholders may stay as in English)',
    (_lang, messages) => {
      const untranslated = Object.entries(messages).filter(([key, message]) => key !== 'expiryPlaceholder' && message === en[key as keyof typeof en]);
      expect(untranslated).toEqual([]);
    },
  );

  it.each(FIELD_ERROR_CODES)('has a message for the field error %s', (code) => {
    expect(en[code]).toBeTruthy();
  });

  it('has English loaded from the start, and another locale only once loaded', async () => {
    expect(loadedLocale('en')?.messages).toBe(en);
    expect(loadedLocale('he')?.dir).toBe('rtl');
  });
});

describe('locale resolution', () => {
  it.each<[string, string[], LocaleTag]>([
    ['fr', ['en-GB'], 'fr'],
    ['fr-CA', ['en-GB'], 'fr'],
    ['AR', ['en-GB'], 'ar'],
    ['he-IL', ['en-US'], 'he'],
    ['pt-BR', ['en-US'], 'pt'],
    ['auto', ['ar-EG'], 'ar'],
    ['auto', ['fr-CA', 'en-US'], 'fr'],
    ['auto', ['sv-SE', 'nl-BE', 'en'], 'nl'],
    ['auto', ['sv-SE', 'fi'], 'en'],
    ['auto', [], 'en'],
    ['de', ['fr-FR'], 'de'],
    ['sv', ['fr-FR'], 'en'],
    ['__proto__', ['fr-FR'], 'en'],
  ])('resolves %s (browser languages %j) to %s', (requested, languages, lang) => {
    expect(resolveLocale(requested, languages)).toBe(lang);
  });
});
