/**
 * checkout.js: the script merchants embed from the vault (`/v1/checkout.js`).
 * It puts the fields iframe on the page and relays between the page and the
 * fields; card data never passes through it. It has no dependencies and must
 * stay under 2 KB gzip, hence closures over classes and terse internals.
 *
 * Early start: `Tessera(pk)` already makes the page's first card, its fields
 * loading in a hidden frame, and `tessera.card()` hands that card out; a
 * destroyed card leaves such a spare behind, so the vault's renderer process
 * outlives it. Before that, once the page is parsed and if no card was made
 * yet, a hidden warm frame (the vault's keyless `/v1/fields/warm`) starts
 * that renderer and fetches the fields' script and stylesheet; it goes once
 * a card's frame has loaded, or after `WARM_FRAME_MS` if none does.
 */
import { FIELD_NAMES, HANDSHAKE_GRACE_MS, HANDSHAKE_TIMEOUT_MS, TOKENIZE_TIMEOUT_MS, WARM_FRAME_MS } from '../shared/constants.ts';
import { FIELDS_UNAVAILABLE, NETWORK_ERROR, NOT_READY, toError } from '../shared/errors.ts';
import {
  PROTOCOL_VERSION,
  SHOPPER_SUBMIT_ID,
  type CardOptions,
  type ChangeState,
  type ColorScheme,
  type InitMessage,
  type ParentToFrameMessage,
  type TesseraErrorShape,
} from '../shared/messages.ts';
import type { Card, CardEventMap, CardEventType, TesseraStatic } from './types.ts';

type Outcome = { ok: true; value: unknown } | { ok: false; error: TesseraErrorShape };
type Handler = (event: never) => void;

/** The vault is wherever this script came from. */
const vault = new URL((document.currentScript as HTMLScriptElement).src).origin;

/**
 * The warm frame: it starts the vault site's renderer process, so that a card made later joins a running one.
 * Made once the page's markup is parsed (a task after this script, if that was earlier), and only if no card
 * was made by then: a page that calls `Tessera()` as it loads starts the renderer with its card's own frame,
 * and a warm frame beside that one only competed with it (measured: docs/benchmarks.md).
 */
let warmFrame: HTMLIFrameElement | undefined;
/** A card was made: its own frame starts the renderer. */
let carded = false;
const makeWarmFrame = (): void => {
  if (carded) return;
  warmFrame = document.createElement('iframe');
  warmFrame.hidden = true;
  warmFrame.src = `${vault}/v1/fields/warm`;
  document.body.append(warmFrame);
  setTimeout(() => warmFrame!.remove(), WARM_FRAME_MS);
};
if (document.readyState == 'loading') addEventListener('DOMContentLoaded', makeWarmFrame);
else setTimeout(makeWarmFrame);

/** A card made ahead of `tessera.card()`, its fields already loading in a hidden frame; at most one per page. */
let spare: { key: string; card: Card } | undefined;

const isError = (error: any): error is TesseraErrorShape => typeof error?.code == 'string' && typeof error.message == 'string';

/** The host's colour scheme at `element`, so the frame matches it (and stays transparent). */
const colorSchemeAt = (element: Element): ColorScheme => {
  let scheme = getComputedStyle(element).colorScheme;
  // `normal`: no CSS color-scheme above the element, but the page may declare its schemes with the meta tag.
  if (scheme === 'normal') scheme = document.querySelector<HTMLMetaElement>('meta[name=color-scheme]')?.content ?? '';
  return /dark/.test(scheme) && !(/light/.test(scheme) && !matchMedia('(prefers-color-scheme:dark)').matches) ? 'dark' : 'light';
};

/** Keeps a hidden card of `key` ready for the next `tessera.card()`, and with it the vault's renderer process. */
const warm = (key: string): unknown => (spare ??= { key, card: createCard(key, {}) });

/**
 * A card, its fields loading at once in a hidden frame that `mount()` moves
 * into place: with `moveBefore()`, which keeps the frame's document; where
 * the browser has no `moveBefore()`, the frame loads again where it lands.
 */
function createCard(key: string, options: CardOptions): Card {
  const handlers: { [T in CardEventType]?: Handler[] } = {};
  const pending = new Map<number, (outcome: Outcome) => void>();
  let frame: HTMLIFrameElement | undefined;
  let channel: string;
  let container: Element | undefined;
  /** The fields said hello and wait for the answer, which needs the place the card is mounted. */
  let hello = false;
  let loaded = false;
  let port: MessagePort | undefined;
  let ready = false;
  let failure: TesseraErrorShape | undefined;
  let timer: ReturnType<typeof setTimeout>;
  let sequence = 0;

  const emit = <T extends CardEventType>(type: T, event: CardEventMap[T]): void =>
    handlers[type]?.forEach((handler) => (handler as (event: CardEventMap[T]) => void)(event));

  const send = (message: ParentToFrameMessage): void => port?.postMessage(message);

  const settleAll = (error: TesseraErrorShape): void => pending.forEach((settle) => settle({ ok: false, error }));

  /** The options with the colour scheme the host has now where the frame sits, unless the merchant chose one. */
  const fullOptions = (): CardOptions => {
    const colorScheme = options.colorScheme ?? colorSchemeAt(container!);
    frame!.style.colorScheme = colorScheme;
    return { ...options, colorScheme };
  };

  // Every message is checked for its shape before it reaches a handler; anything else is dropped.
  const onFrameMessage = ({ data: m }: MessageEvent): void => {
    if (typeof m != 'object' || !m) return;
    const type = m.type;
    if (type == 'ready') {
      ready = true;
      failure = undefined;
      emit('ready', undefined);
    } else if (type == 'resize' && m.height === +m.height) {
      frame!.style.height = `${m.height}px`;
      emit('resize', { height: m.height });
    } else if ((type == 'focus' || type == 'blur') && FIELD_NAMES.includes(m.field)) {
      emit(type, { field: m.field });
    } else if (
      type == 'change' &&
      m.complete === !!m.complete &&
      m.empty === !!m.empty &&
      (m.brand === null || typeof m.brand == 'string') &&
      (m.error === null || isError(m.error))
    ) {
      const { complete, empty, brand, error }: ChangeState = m;
      emit('change', { complete, empty, brand, error });
    } else if (type == 'result' && m.id === +m.id && (m.ok ? typeof m.value == 'object' && m.value : m.ok === false && isError(m.error))) {
      const outcome: Outcome = m.ok ? { ok: true, value: m.value } : { ok: false, error: m.error };
      if (m.id !== SHOPPER_SUBMIT_ID) return pending.get(m.id)?.(outcome);
      emit('submit', outcome.ok ? (outcome as CardEventMap['submit']) : { ok: false, error: toError(outcome.error) });
    }
  };

  /**
   * Answers the fields' hello with the options and a port. A later hello
   * means the browser reloaded the frame: the fields start over, empty, on a
   * new port, and a tokenization they were running has no answer to give.
   */
  const handshake = (): void => {
    hello = ready = false;
    port?.close();
    settleAll(NETWORK_ERROR);
    const pipe = new MessageChannel();
    port = pipe.port1;
    port.onmessage = onFrameMessage;
    const init: InitMessage = { v: PROTOCOL_VERSION, type: 'tessera:init', channel, options: fullOptions() };
    frame!.contentWindow!.postMessage(init, vault, [pipe.port2]);
  };

  // Checked in this order: exact origin, source window, shape, channel, type. Anything else is not ours.
  const onWindowMessage = (event: MessageEvent): void => {
    const data = event.data;
    if (
      event.origin === vault &&
      frame &&
      event.source === frame.contentWindow &&
      typeof data == 'object' &&
      data &&
      data.v === PROTOCOL_VERSION &&
      data.channel === channel &&
      data.type === 'tessera:hello'
    ) {
      hello = true;
      if (container) handshake();
    }
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

  const graceTimer = (): void => {
    clearTimeout(timer);
    timer = setTimeout(diagnose, HANDSHAKE_GRACE_MS);
  };

  /** The fields start loading in a hidden frame (before <body> exists, under the root: mount() moves it anyway). */
  const open = (): void => {
    carded = true;
    channel = crypto.getRandomValues(new Uint32Array(4)).join('-');
    frame = document.createElement('iframe');
    // No `allow` grants: the fields use no delegated feature, and a cross-origin frame gets none by default.
    frame.title = 'Secure card payment form';
    frame.src = `${vault}/v1/fields?key=${encodeURIComponent(key)}&origin=${encodeURIComponent(location.origin)}#${channel}`;
    frame.hidden = true;
    frame.onload = () => {
      // The card's frame keeps the renderer now (removing the frame again is harmless).
      warmFrame?.remove();
      loaded = true;
      if (container) graceTimer();
    };
    addEventListener('message', onWindowMessage);
    (document.body ?? document.documentElement).append(frame);
  };

  const card: Card = {
    mount(target) {
      const element = typeof target === 'string' ? document.querySelector(target) : target;
      if (!element || container) throw new TypeError(`Tessera: cannot mount the card on ${target}`);
      container = element;
      if (!frame) open();
      frame!.hidden = false;
      frame!.style.cssText = 'border:0;width:100%;display:block';
      try {
        element.moveBefore(frame!, null);
      } catch {
        // No moveBefore(), or a container outside the document: the frame loads again, and its first load no longer counts.
        hello = loaded = false;
        element.append(frame!);
      }
      if (loaded) graceTimer();
      else timer = setTimeout(diagnose, HANDSHAKE_TIMEOUT_MS);
      if (hello) handshake();
      else fullOptions();
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
          outcome.ok ? resolve(outcome.value as never) : reject(toError(outcome.error));
        });
        send({ type: 'tokenize', id });
      }),
    destroy() {
      // Made before this frame goes, so the vault's renderer process lives on for the next mount.
      warm(key);
      removeEventListener('message', onWindowMessage);
      clearTimeout(timer);
      port?.close();
      frame?.remove();
      frame = port = container = undefined;
      hello = loaded = ready = false;
      settleAll(NOT_READY);
    },
  };
  open();
  return card;
}

const Tessera: TesseraStatic = (key) => {
  if (!/^pk_/.test(key)) throw new TypeError('Tessera: a publishable key (pk_…) is required');
  warm(key);
  return {
    card(options = {}) {
      if (spare?.key !== key) return createCard(key, options);
      const { card } = spare;
      spare = undefined;
      return card.update(options);
    },
  };
};
window.Tessera = Tessera;
