import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { Express } from 'express';

/** How long the vault waits on a client; `server/config.ts` reads them from the environment. */
export interface HttpTimeouts {
  /** From the connection (or the previous response) to the end of the request's headers. */
  headersMs: number;
  /** From the start of a request to the end of its body. */
  requestMs: number;
  /** How long an idle keep-alive connection stays open after a response. */
  keepAliveMs: number;
  /** A socket on which nothing moves either way for this long is closed, whatever it was doing. */
  idleMs: number;
}

/**
 * The vault's HTTP server, with the timeouts that keep slow clients (one
 * header byte a second, a body that never ends) from holding connections
 * open: Node answers 408 and closes when `headersMs` or `requestMs` runs
 * out. `main.ts` and the tests' vault both listen through this, so the
 * tests exercise the settings production runs with.
 *
 * Its requests and responses are made with Express's own prototypes
 * (`app.request`, `app.response`) from the start. Express gives every
 * request and response those prototypes as it dispatches them
 * (`Object.setPrototypeOf`); on an object made with Node's, V8 then keeps
 * the request's objects through the young generation's collections: ~20 KB
 * a request promoted to the old generation, which longer scavenges copy and
 * full collections sweep. Made with Express's, that call changes nothing
 * (docs/benchmarks.md, "Requests made with Express's prototypes").
 */
export function createVaultServer(app: Express, timeouts: HttpTimeouts): Server {
  const Request = withPrototype(IncomingMessage, app.request);
  const Response = withPrototype(ServerResponse, app.response);
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      // Node looks for expired requests only this often (30 s by default), which would stretch a short timeout.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeouts.headersMs / 4))),
      ...(Request === undefined ? {} : { IncomingMessage: Request }),
      ...(Response === undefined ? {} : { ServerResponse: Response }),
    },
    app,
  );
  server.setTimeout(timeouts.idleMs);
  return server;
}

/**
 * A constructor for Node's server to call with `new`: runs `base` on an
 * object whose prototype is `prototype` (which has `base.prototype` on its
 * chain, as Express's request and response do). `base` is called, not
 * constructed with `Reflect.construct(base, args, Made)`: made that way the
 * objects were promoted as before (~16 KB a request, measured). Node's
 * `IncomingMessage` and `ServerResponse` are plain functions; were one a
 * class some day, which cannot be called, the server keeps Node's own.
 */
function withPrototype<T extends typeof IncomingMessage | typeof ServerResponse>(base: T, prototype: object): T | undefined {
  if (!(prototype instanceof base) || Function.prototype.toString.call(base).startsWith('class')) return undefined;
  function Made(this: object, ...args: unknown[]) {
    Reflect.apply(base, this, args);
  }
  Made.prototype = prototype;
  return Made as unknown as T;
}
