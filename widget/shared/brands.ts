/**
 * Card brands, named as credit-card-type names them (the library both the
 * iframe and the vault use to detect a brand), so the two sides always agree.
 */
export const CARD_BRANDS = [
  'visa',
  'mastercard',
  'american-express',
  'diners-club',
  'discover',
  'jcb',
  'unionpay',
  'maestro',
  'mir',
  'elo',
  'hiper',
  'hipercard',
  'verve',
] as const;

export type CardBrand = (typeof CARD_BRANDS)[number];

export function isCardBrand(value: unknown): value is CardBrand {
  return typeof value === 'string' && (CARD_BRANDS as readonly string[]).includes(value);
}
