/**
 * The card drawn in the number field (and beside a saved card in cvc mode):
 * small inline SVG, as the CSP allows no external images. This is the plain
 * card the first render draws; the brands' own marks come with the typing
 * rules (`brand-marks.ts`), since a brand shows only once something is typed.
 */
import { html, nothing, svg, type TemplateResult } from 'lit/html.js';
import type { CardBrand } from '../shared/brands.ts';

/** A card icon: named for assistive technology when there is a brand, hidden from it otherwise. */
export const cardIcon = (content: unknown, name?: string): TemplateResult =>
  html`<svg viewBox="0 0 32 20" role="img" aria-label=${name ?? nothing} aria-hidden=${name ? nothing : 'true'}>${content}</svg>`;

/** A card outline, named after `brand` when it is one the fields have no mark for. */
export const plainCard = (brand?: CardBrand): TemplateResult =>
  cardIcon(
    svg`<rect x=".5" y=".5" width="31" height="19" rx="3" fill="none" stroke="currentColor"/><path d="M1 6h30v3H1z" fill="currentColor"/>`,
    brand,
  );
