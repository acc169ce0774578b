import { createServer, type RequestListener, type Server } from 'node:http';

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
 */
export function createVaultServer(app: RequestListener, timeouts: HttpTimeouts): Server {
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      // Node looks for expired requests only this often (30 s by default), which would stretch a short timeout.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeouts.headersMs / 4))),
    },
    app,
  );
  server.setTimeout(timeouts.idleMs);
  return server;
}
