import { describe, expect, it } from 'vitest';
import { en } from '../../../widget/fields/i18n/en.ts';
import { LOCALES, resolveLocale } from '../../../widget/fields/i18n/index.ts';
import { FIELD_ERROR_CODES } from '../../../widget/shared/constants.ts';

describe('locales', () => {
  it.each(Object.entries(LOCALES))('%s has every English key and no other', (_lang, messages) => {
    expect(Object.keys(messages).sort()).toEqual(Object.keys(en).sort());
  });

  it.each(Object.entries(LOCALES))('%s has no empty message', (_lang, messages) => {
    expect(Object.values(messages).filter((message) => !message.trim())).toEqual([]);
  });

  it.each(FIELD_ERROR_CODES)('has a message for the field error %s', (code) => {
    expect(en[code]).toBeTruthy();
  });

  it('ships English, French and Arabic', () => {
    expect(Object.keys(LOCALES).sort()).toEqual(['ar', 'en', 'fr']);
  });
});

describe('locale resolution', () => {
  it.each([
    ['fr', 'en-GB', 'fr', 'ltr'],
    ['fr-CA', 'en-GB', 'fr', 'ltr'],
    ['AR', 'en-GB', 'ar', 'rtl'],
    ['auto', 'ar-EG', 'ar', 'rtl'],
    ['auto', 'fr-FR', 'fr', 'ltr'],
    ['auto', 'de-DE', 'en', 'ltr'],
    ['de', 'fr-FR', 'en', 'ltr'],
    ['__proto__', 'fr-FR', 'en', 'ltr'],
  ])('resolves %s (browser %s) to %s, %s', (requested, browser, lang, dir) => {
    const locale = resolveLocale(requested, browser);
    expect([locale.lang, locale.dir, locale.messages]).toEqual([lang, dir, LOCALES[lang]]);
  });
});
