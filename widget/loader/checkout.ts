/**
 * checkout.js: the script merchants embed from the vault (`/v1/checkout.js`).
 * It puts the fields iframe on the page and relays between the page and the
 * fields; card data never passes through it. It has no dependencies and must
 * stay under 2 KB gzip, hence closures over classes and terse internals.
 */
import { HANDSHAKE_GRACE_MS, HANDSHAKE_TIMEOUT_MS, TOKENIZE_TIMEOUT_MS } from '../shared/constants.ts';
import { FIELDS_UNAVAILABLE, NETWORK_ERROR, NOT_READY } from '../shared/errors.ts';
import {
  PROTOCOL_VERSION,
  SHOPPER_SUBMIT_ID,
  type CardOptions,
  type ColorScheme,
  type FrameToParentMessage,
  type InitMessage,
  type ParentToFrameMessage,
  type TesseraErrorShape,
} from '../shared/messages.ts';
import type { Card, CardEventMap, CardEventType, TesseraError, TesseraStatic } from './types.ts';

type Outcome = Extract<FrameToParentMessage, { type: 'result' }>;
type Handler = (event: never) => void;

/** The vault is wherever this script came from. */
const vault = new URL((document.currentScript as HTMLScriptElement).src).origin;

const toError = (shape: TesseraErrorShape): TesseraError =>
  Object.assign(new Error(shape.message), shape, { name: 'TesseraError' as const });

/** The host's colour scheme at `element`, so the frame matches it (and stays transparent). */
const colorSchemeAt = (element: Element): ColorScheme => {
  let scheme = getComputedStyle(element).colorScheme;
  // `normal`: no CSS color-scheme above the element, but the page may declare its schemes with the meta tag.
  if (scheme === 'normal') scheme = document.querySelector<HTMLMetaElement>('meta[name=color-scheme]')?.content ?? '';
  return /dark/.test(scheme) && !(/light/.test(scheme) && !matchMedia('(prefers-color-scheme:dark)').matches) ? 'dark' : 'light';
};

function createCard(key: string, options: CardOptions): Card {
  const channel = crypto.getRandomValues(new Uint32Array(4)).join('-');
  const handlers: { [T in CardEventType]?: Handler[] } = {};
  const pending = new Map<number, (outcome: Pick<Outcome, 'ok'> & Partial<Outcome>) => void>();
  let frame: HTMLIFrameElement | undefined;
  let port: MessagePort | undefined;
  let ready = false;
  let failure: TesseraErrorShape | undefined;
  let timer: ReturnType<typeof setTimeout>;
  let sequence = 0;

  const emit = <T extends CardEventType>(type: T, event: CardEventMap[T]): void =>
    handlers[type]?.forEach((handler) => (handler as (event: CardEventMap[T]) => void)(event));

  const send = (message: ParentToFrameMessage): void => port?.postMessage(message);

  /** The options with the colour scheme the host has now where the frame sits, unless the merchant chose one. */
  const fullOptions = (): CardOptions => {
    const colorScheme = options.colorScheme ?? colorSchemeAt(frame!.parentElement!);
    frame!.style.colorScheme = colorScheme;
    return { ...options, colorScheme };
  };

  const onFrameMessage = ({ data }: MessageEvent<FrameToParentMessage>): void => {
    if (data.type === 'ready') {
      ready = true;
      failure = undefined;
      emit('ready', undefined);
    } else if (data.type === 'resize') {
      frame!.style.height = `${data.height}px`;
      emit('resize', { height: data.height });
    } else if (data.type === 'result') {
      const { type, id, ...outcome } = data;
      if (id !== SHOPPER_SUBMIT_ID) return pending.get(id)?.(outcome);
      emit('submit', outcome.ok ? outcome : { ok: false, error: toError(outcome.error) });
    } else {
      const { type, ...event } = data;
      emit(type, event as never);
    }
  };

  // Checked in this order: exact origin, source window, shape, channel, type. Anything else is not ours.
  const onWindowMessage = (event: MessageEvent): void => {
    const data = event.data;
    if (
      event.origin !== vault ||
      !frame ||
      event.source !== frame.contentWindow ||
      typeof data !== 'object' ||
      !data ||
      data.v !== PROTOCOL_VERSION ||
      data.channel !== channel ||
      data.type !== 'tessera:hello'
    ) {
      return;
    }
    // A second hello means the frame reloaded: start over on a new port.
    port?.close();
    ready = false;
    const pipe = new MessageChannel();
    port = pipe.port1;
    port.onmessage = onFrameMessage;
    const init: InitMessage = { v: PROTOCOL_VERSION, type: 'tessera:init', channel, options: fullOptions() };
    frame.contentWindow!.postMessage(init, vault, [pipe.port2]);
  };

  /** No hello: the vault served no working fields. It tells us why (by our Origin header), or we say it generically. */
  const diagnose = (): void => {
    if (ready || failure) return;
    fetch(`${vault}/v1/fields/status?key=${encodeURIComponent(key)}`)
      .then((response) => response.json())
      .then(
        (body) => body.error,
        () => undefined,
      )
      .then((error) => {
        if (ready || failure) return;
        const reason: TesseraErrorShape = typeof error?.code === 'string' ? error : FIELDS_UNAVAILABLE;
        failure = reason;
        emit('error', toError(reason));
      });
  };

  const card: Card = {
    mount(target) {
      const container = typeof target === 'string' ? document.querySelector(target) : target;
      if (!container || frame) throw new TypeError(`Tessera: cannot mount the card on ${target}`);
      frame = document.createElement('iframe');
      // No `allow` grants: the fields use no delegated feature, and a cross-origin frame gets none by default.
      frame.title = 'Secure card payment form';
      frame.src = `${vault}/v1/fields?key=${encodeURIComponent(key)}&origin=${encodeURIComponent(location.origin)}#${channel}`;
      frame.style.cssText = 'border:0;width:100%;display:block';
      frame.onload = () => {
        clearTimeout(timer);
        timer = setTimeout(diagnose, HANDSHAKE_GRACE_MS);
      };
      timer = setTimeout(diagnose, HANDSHAKE_TIMEOUT_MS);
      addEventListener('message', onWindowMessage);
      container.append(frame);
      fullOptions();
      return card;
    },
    on(type: CardEventType, handler: Handler) {
      (handlers[type] ??= []).push(handler);
      return card;
    },
    off(type, handler) {
      handlers[type] = handlers[type]?.filter((known) => known !== handler);
      return card;
    },
    update(next) {
      options = { ...options, ...next };
      if (port) send({ type: 'update', options: fullOptions() });
      return card;
    },
    focus(field) {
      send({ type: 'focus', field });
      return card;
    },
    clear() {
      send({ type: 'clear' });
      return card;
    },
    tokenize: () =>
      new Promise((resolve, reject) => {
        if (failure || !ready) return reject(toError(failure ?? NOT_READY));
        const id = ++sequence;
        const timeout = setTimeout(() => pending.get(id)?.({ ok: false, error: NETWORK_ERROR }), TOKENIZE_TIMEOUT_MS);
        pending.set(id, (outcome) => {
          clearTimeout(timeout);
          pending.delete(id);
          outcome.ok ? resolve(outcome.value!) : reject(toError(outcome.error!));
        });
        send({ type: 'tokenize', id });
      }),
    destroy() {
      removeEventListener('message', onWindowMessage);
      clearTimeout(timer);
      port?.close();
      frame?.remove();
      frame = port = undefined;
      ready = false;
      pending.forEach((settle) => settle({ ok: false, error: NOT_READY }));
    },
  };
  return card;
}

const Tessera: TesseraStatic = (key) => {
  if (!/^pk_/.test(key)) throw new TypeError('Tessera: a publishable key (pk_…) is required');
  return { card: (options = {}) => createCard(key, options) };
};
window.Tessera = Tessera;

const EVENT_TYPES: CardEventType[] = ['ready', 'change', 'focus', 'blur', 'resize', 'submit', 'error'];

customElements.get('tessera-card') ??
  customElements.define(
    'tessera-card',
    class extends HTMLElement {
      card: Card | undefined;

      connectedCallback(): void {
        const attribute = (name: string) => this.getAttribute(name) ?? undefined;
        this.card = Tessera(attribute('publishable-key') ?? '').card({
          mode: attribute('mode') as CardOptions['mode'],
          saveCard: attribute('save-card') as CardOptions['saveCard'],
          customer: attribute('customer'),
          locale: attribute('locale'),
          token: attribute('token'),
          brand: attribute('brand') as CardOptions['brand'],
          last4: attribute('last4'),
          fields: { name: this.hasAttribute('collect-name'), postalCode: this.hasAttribute('collect-postal-code') },
        });
        for (const type of EVENT_TYPES) {
          this.card.on(type as 'change', (detail) =>
            this.dispatchEvent(new CustomEvent(`tessera-${type}`, { detail, bubbles: true, composed: true })),
          );
        }
        this.card.mount(this);
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
