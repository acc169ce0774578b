/**
 * `<tessera-card publishable-key="pk_…" mode="signup">`: a card as a light
 * custom element, for pages built from web components. It ships with
 * tessera.mjs (`loadTessera()` defines it) rather than in checkout.js, whose
 * 2 KB budget it would take a fifth of. Attributes are the card's options and
 * follow changes; events are the card's, prefixed (`tessera-change`), with
 * the payload in `detail`.
 */
import { NOT_READY, toError } from '../shared/errors.ts';
import type { Card, CardEventType, CardOptions, TesseraStatic } from './types.ts';

const EVENT_TYPES: CardEventType[] = ['ready', 'change', 'focus', 'blur', 'resize', 'submit', 'error'];

/** The attributes that are card options (each the option's name in kebab case); the key is not one of them. */
export const OPTION_ATTRIBUTES = ['mode', 'save-card', 'customer', 'locale', 'token', 'brand', 'last4', 'collect-name', 'collect-postal-code'];

export function defineTesseraCard(Tessera: TesseraStatic): void {
  if (customElements.get('tessera-card')) return;
  customElements.define(
    'tessera-card',
    class extends HTMLElement {
      /** Changes to these update the card in place; the publishable key is read when the element is connected. */
      static observedAttributes = OPTION_ATTRIBUTES;
      card: Card | undefined;

      options(): CardOptions {
        const value = (name: string) => this.getAttribute(name) ?? undefined;
        return {
          mode: value('mode') as CardOptions['mode'],
          saveCard: value('save-card') as CardOptions['saveCard'],
          customer: value('customer'),
          locale: value('locale'),
          token: value('token'),
          brand: value('brand') as CardOptions['brand'],
          last4: value('last4'),
          fields: { name: this.hasAttribute('collect-name'), postalCode: this.hasAttribute('collect-postal-code') },
        };
      }

      connectedCallback(): void {
        this.card = Tessera(this.getAttribute('publishable-key') ?? '').card(this.options());
        for (const type of EVENT_TYPES) {
          this.card.on(type as 'change', (detail) =>
            this.dispatchEvent(new CustomEvent(`tessera-${type}`, { detail, bubbles: true, composed: true })),
          );
        }
        this.card.mount(this);
      }

      attributeChangedCallback(): void {
        this.card?.update(this.options());
      }

      disconnectedCallback(): void {
        this.card?.destroy();
        this.card = undefined;
      }

      tokenize(): Promise<unknown> {
        return this.card ? this.card.tokenize() : Promise.reject(toError(NOT_READY));
      }
    },
  );
}
