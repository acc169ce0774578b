/*
 * The test shop's own script: mounts cards the way a merchant would and keeps
 * what the card API hands the page (events, tokenize outcomes) as plain data
 * that Playwright can read back.
 */
(() => {
  const EVENTS = ['ready', 'change', 'focus', 'blur', 'resize', 'submit', 'error'];
  const cards = {};
  const manual = {};

  /** A TesseraError (an Error) as plain data. */
  const plainError = (error) => ({
    name: error?.name,
    code: error?.code,
    type: error?.type,
    message: error?.message,
    param: error?.param,
    isError: error instanceof Error,
  });

  const plainEvent = (type, event) => {
    if (type === 'error') return plainError(event);
    if (type === 'submit' && event && !event.ok) return { ok: false, error: plainError(event.error) };
    return event === undefined ? null : JSON.parse(JSON.stringify(event));
  };

  /** A slot for a card: a plain div, or a div inside an open shadow root on that slot. */
  const slotFor = (name, placement) => {
    const slot = document.createElement('div');
    slot.id = name;
    slot.className = 'slot';
    document.getElementById('slots').append(slot);
    if (!placement.shadow) return slot;
    const root = slot.attachShadow({ mode: 'open' });
    const target = document.createElement('div');
    target.className = 'in-shadow';
    root.append(target);
    return target;
  };

  window.harness = {
    /** `Tessera(key).card(options).mount(…)`, recording every event the card emits. */
    mount(name, key, options = {}, placement = {}) {
      const events = [];
      const card = window.Tessera(key).card(options);
      for (const type of EVENTS) card.on(type, (event) => events.push({ type, detail: plainEvent(type, event) }));
      const target = slotFor(name, placement);
      card.mount(placement.bySelector ? `#${name}` : target);
      cards[name] = { card, events };
    },

    /** `card.destroy()`: the card's slot stays, empty. */
    destroy(name) {
      cards[name].card.destroy();
    },

    /** `card.clear()`. */
    clear(name) {
      cards[name].card.clear();
    },

    /** `card.update(options)`. */
    update(name, options) {
      cards[name].card.update(options);
    },

    events(name, type) {
      const events = cards[name]?.events ?? [];
      return type === undefined ? events : events.filter((event) => event.type === type);
    },

    /** The outcome of `card.tokenize()`, as data, and how long it took. */
    async tokenize(name) {
      const started = performance.now();
      try {
        const value = await cards[name].card.tokenize();
        return { ok: true, value, ms: performance.now() - started };
      } catch (error) {
        return { ok: false, error: plainError(error), ms: performance.now() - started };
      }
    },

    /** An iframe the page adds itself, as a page that does not use checkout.js would. */
    frame(name, src) {
      const frame = document.createElement('iframe');
      frame.title = name;
      frame.src = src;
      frame.id = name;
      document.getElementById('slots').append(frame);
    },

    /**
     * Plays the loader's part for a frame the page added itself: posts
     * `tessera:init` with a fresh port to the fields, and keeps what comes
     * back on the port.
     */
    init(name, vaultOrigin, options = {}) {
      const frame = document.getElementById(name);
      const channel = new URL(frame.src).hash.slice(1);
      const pipe = new MessageChannel();
      const received = [];
      pipe.port1.onmessage = (event) => received.push(event.data);
      manual[name] = received;
      frame.contentWindow.postMessage({ v: 1, type: 'tessera:init', channel, options }, vaultOrigin, [pipe.port2]);
    },

    received(name) {
      return JSON.parse(JSON.stringify(manual[name] ?? []));
    },

    /** Whether the page can reach into a frame's document; the same-origin policy must say no. */
    readFrameDocument(name) {
      const frame = document.querySelector(`#${name} iframe`) ?? document.getElementById(name);
      const contentDocument = frame.contentDocument === null ? 'null' : 'readable';
      let viaWindow;
      try {
        viaWindow = frame.contentWindow.document ? 'readable' : 'empty';
      } catch (error) {
        viaWindow = error.name;
      }
      return { contentDocument, viaWindow };
    },

    /** Whether a card's iframe sits in the slot's light DOM or in its shadow root. */
    placement(name) {
      const slot = document.getElementById(name);
      return { inLightDom: slot.querySelector('iframe') !== null, inShadow: slot.shadowRoot?.querySelector('iframe') != null };
    },

    channelOf(name) {
      const frame = document.querySelector(`#${name} iframe`);
      return new URL(frame.src).hash.slice(1);
    },

    /** Horizontal overflow of an element on the page (`scrollWidth - clientWidth`). */
    overflow(selector) {
      const element = selector === 'html' ? document.documentElement : document.querySelector(selector);
      return { scrollWidth: element.scrollWidth, clientWidth: element.clientWidth };
    },
  };
})();
