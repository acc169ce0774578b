/*
 * Init script for every page and frame of an end-to-end test (Playwright
 * runs it before any of the page's own scripts, in every frame, the fields'
 * included). It reports to the test, through the `__tesseraSpy` binding:
 *
 * - every `postMessage` call, with its target origin: on this window, on a
 *   `MessagePort`, and on another (cross-origin) window reached through
 *   `iframe.contentWindow`, `parent` or `event.source`;
 * - every message this window, or a `MessagePort` it listens on, receives.
 *
 * A cross-origin window's `postMessage` cannot be patched from here, so
 * those three ways to reach another window hand out one Proxy per window
 * that records the call and passes it on. One Proxy per window keeps
 * `event.source === frame.contentWindow` true exactly when it was before.
 */
(() => {
  const report = (entry) => {
    try {
      globalThis.__tesseraSpy?.({ ...entry, at: location.href });
    } catch {
      // The binding is gone while the page closes; nothing left to record.
    }
  };

  const serialize = (value) => {
    try {
      return JSON.stringify(value, (_key, inner) => {
        if (typeof MessagePort !== 'undefined' && inner instanceof MessagePort) return '[MessagePort]';
        if (inner instanceof Error) return { name: inner.name, message: inner.message };
        return inner;
      });
    } catch {
      return String(value);
    }
  };

  /** Where the call came from: the script URLs on the stack, not the spy itself. */
  const caller = () =>
    (new Error().stack ?? '')
      .split('\n')
      .slice(1)
      .map((line) => line.trim())
      .filter((line) => !line.includes('__tesseraSpy') && !/spy\.js|<anonymous>/.test(line))
      .slice(0, 3)
      .join(' | ');

  const targetOriginOf = (options) => {
    if (typeof options === 'string') return options;
    if (options && typeof options === 'object' && !Array.isArray(options)) return options.targetOrigin ?? '/';
    return '/';
  };

  const recordPost = (via, message, options) =>
    report({ kind: 'post', via, targetOrigin: via === 'port' ? null : targetOriginOf(options), data: serialize(message), caller: caller() });

  // ── calls on this window ─────────────────────────────────────────────────
  const ownPostMessage = window.postMessage;
  window.postMessage = function postMessage(message, options, transfer) {
    recordPost('window', message, options);
    return ownPostMessage.apply(this, arguments);
  };

  // ── calls on other windows ───────────────────────────────────────────────
  const isCrossOrigin = (candidate) => {
    try {
      void candidate.document;
      return false;
    } catch {
      return true;
    }
  };
  const proxies = new WeakMap();
  const wrapWindow = (candidate) => {
    if (candidate === null || typeof candidate !== 'object' || candidate === window) return candidate;
    if (typeof MessagePort !== 'undefined' && candidate instanceof MessagePort) return candidate;
    if (!('postMessage' in candidate) || !('closed' in candidate) || !isCrossOrigin(candidate)) return candidate;
    let proxy = proxies.get(candidate);
    if (!proxy) {
      proxy = new Proxy(candidate, {
        get(target, property) {
          if (property === 'postMessage') {
            return function postMessage(message, options, transfer) {
              recordPost('window', message, options);
              return target.postMessage(...arguments);
            };
          }
          const value = target[property];
          return typeof value === 'function' ? value.bind(target) : value;
        },
        set(target, property, value) {
          target[property] = value;
          return true;
        },
      });
      proxies.set(candidate, proxy);
    }
    return proxy;
  };
  const wrapGetter = (object, property) => {
    const descriptor = Object.getOwnPropertyDescriptor(object, property);
    if (!descriptor?.get || !descriptor.configurable) return;
    Object.defineProperty(object, property, {
      ...descriptor,
      get() {
        return wrapWindow(descriptor.get.call(this));
      },
    });
  };
  wrapGetter(HTMLIFrameElement.prototype, 'contentWindow');
  wrapGetter(MessageEvent.prototype, 'source');
  wrapGetter(window, 'parent');

  // ── ports ────────────────────────────────────────────────────────────────
  const portPostMessage = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function postMessage(message) {
    recordPost('port', message);
    return portPostMessage.apply(this, arguments);
  };

  const watchedPorts = new WeakSet();
  const portAddEventListener = MessagePort.prototype.addEventListener;
  const watchPort = (port) => {
    if (watchedPorts.has(port)) return;
    watchedPorts.add(port);
    portAddEventListener.call(port, 'message', (event) => report({ kind: 'received', via: 'port', origin: event.origin, data: serialize(event.data) }));
  };
  const onmessage = Object.getOwnPropertyDescriptor(MessagePort.prototype, 'onmessage');
  Object.defineProperty(MessagePort.prototype, 'onmessage', {
    ...onmessage,
    set(handler) {
      watchPort(this);
      onmessage.set.call(this, handler);
    },
  });
  MessagePort.prototype.addEventListener = function addEventListener(type) {
    if (type === 'message') watchPort(this);
    return portAddEventListener.apply(this, arguments);
  };

  // ── messages to this window ──────────────────────────────────────────────
  window.addEventListener(
    'message',
    (event) => report({ kind: 'received', via: 'window', origin: event.origin, data: serialize(event.data) }),
    true,
  );
})();
