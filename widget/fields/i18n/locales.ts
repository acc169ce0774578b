/** Every locale the fields speak (a test checks that each has every English key), and which are written right to left. */
export const LOCALES = ['en', 'ar', 'de', 'es', 'fr', 'he', 'it', 'ja', 'nl', 'pt'] as const;
export type LocaleTag = (typeof LOCALES)[number];

export const RTL: readonly LocaleTag[] = ['ar', 'he'];
