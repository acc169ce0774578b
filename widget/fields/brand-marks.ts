/** The brands' marks, drawn in a data table to stay compact; part of the typing rules' chunk. */
import { svg, type TemplateResult } from 'lit/html.js';
import type { CardBrand } from '../shared/brands.ts';
import { cardIcon, plainCard } from './brand-icon.ts';

/** Brand name for assistive technology, background colour, and the short mark drawn on it. */
const MARKS: Partial<Record<CardBrand, [name: string, colour: string, mark: string]>> = {
  visa: ['Visa', '#1a1f71', 'VISA'],
  'american-express': ['American Express', '#1f72cd', 'AMEX'],
  'diners-club': ['Diners Club', '#0079be', 'DC'],
  discover: ['Discover', '#e55c20', 'DISC'],
  jcb: ['JCB', '#0b4ea2', 'JCB'],
  unionpay: ['UnionPay', '#d10429', 'UP'],
  mir: ['Mir', '#0f754e', 'MIR'],
};

/** Mastercard and Maestro are drawn as their two overlapping circles. */
const CIRCLES: Partial<Record<CardBrand, [name: string, right: string]>> = {
  mastercard: ['Mastercard', '#f79e1b'],
  maestro: ['Maestro', '#00a2e5'],
};

export function brandIcon(brand: CardBrand | undefined): TemplateResult {
  const mark = brand && MARKS[brand];
  if (mark) {
    const [name, colour, text] = mark;
    return cardIcon(
      svg`<rect width="32" height="20" rx="3" fill=${colour}/><text x="16" y="14" fill="#fff" font-family="Arial,sans-serif" font-size="9" font-weight="700" text-anchor="middle">${text}</text>`,
      name,
    );
  }
  const circles = brand && CIRCLES[brand];
  if (circles) {
    return cardIcon(
      svg`<rect width="32" height="20" rx="3" fill="#252525"/><circle cx="12.5" cy="10" r="6" fill="#eb001b"/><circle cx="19.5" cy="10" r="6" fill=${circles[1]} fill-opacity=".85"/>`,
      circles[0],
    );
  }
  return plainCard(brand);
}
