/*
 * A script on another origin (or the merchant's, in another window) that
 * forges the widget's messages. Tests drive it; nothing it sends may be
 * acted on.
 */
(() => {
  const received = [];
  window.forger = {
    /** Posts `message` to the page that frames this one. */
    postToParent(message, targetOrigin) {
      parent.postMessage(message, targetOrigin);
    },

    /** Posts a well-formed `tessera:init`, with a port, to a sibling frame (the fields) of this frame. */
    postInitToSibling(index, targetOrigin, channel, options = {}) {
      const pipe = new MessageChannel();
      pipe.port1.onmessage = (event) => received.push(event.data);
      parent.frames[index].postMessage({ v: 1, type: 'tessera:init', channel, options }, targetOrigin, [pipe.port2]);
    },

    received() {
      return JSON.parse(JSON.stringify(received));
    },
  };
})();
