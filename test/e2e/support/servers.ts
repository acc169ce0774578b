/**
 * The HTTP servers around the vault in the end-to-end tests, all real and on
 * loopback: the merchant's pages (served on an origin the merchant allows and
 * on one it does not) and a switchable front door to the vault, so a test can
 * take the vault off the network and bring it back.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join } from 'node:path';

const PAGES_DIR = join(import.meta.dirname, '..', 'pages');
const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** Only a loopback origin may stand in for `%VAULT%`: the page server must not become an open redirector to arbitrary script. */
const LOOPBACK_ORIGIN = /^http:\/\/(127\.0\.0\.1|localhost):\d{1,5}$/;

export interface PageServer {
  /** e.g. `http://localhost:41234`: the origin the browser sees, which is what `allowed_origins` lists. */
  origin: string;
  close(): Promise<void>;
}

interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
}

async function listen(handler: RequestListener, port = 0): Promise<Listening> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

/**
 * Serves `test/e2e/pages/` as the merchant's site. In an HTML page,
 * `%VAULT%` becomes the `vault` query parameter, so each page loads
 * `checkout.js` from the vault a test points it at, as a merchant's
 * `<script src>` would.
 *
 * `hostname` is what the browser uses to reach it: `localhost` and
 * `127.0.0.1` are different origins for the same loopback socket, and both
 * are secure contexts, which the fields need for WebCrypto (a frame is a
 * secure context only if every ancestor is one).
 */
export async function startPageServer(hostname: 'localhost' | '127.0.0.1'): Promise<PageServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://pages.invalid');
    const name = url.pathname.slice(1);
    if (req.method !== 'GET' || !/^[a-z0-9-]+\.(html|js)$/.test(name)) return void res.writeHead(404).end();
    let body: string;
    try {
      body = await readFile(join(PAGES_DIR, name), 'utf8');
    } catch {
      return void res.writeHead(404).end();
    }
    if (name.endsWith('.html')) {
      const vault = url.searchParams.get('vault') ?? '';
      if (!LOOPBACK_ORIGIN.test(vault)) return void res.writeHead(400).end('vault must be a loopback origin');
      body = body.replaceAll('%VAULT%', vault);
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(name)]!, 'cache-control': 'no-store' }).end(body);
  };
  const listening = await listen((req, res) => void handle(req, res).catch(() => res.writeHead(500).end()));
  return { origin: `http://${hostname}:${listening.port}`, close: listening.close };
}

export type VaultDoorState = 'open' | 'closed' | 'stalling';

/**
 * Another listening socket in front of the same vault application: its own
 * origin, which a test can close (connections refused), reopen on the same
 * port, or make hold `POST /v1/tokens` without ever answering.
 */
export interface VaultDoor {
  url: string;
  state(): VaultDoorState;
  close(): Promise<void>;
  reopen(): Promise<void>;
  /** Keeps every `POST /v1/tokens` waiting for an answer that never comes, until `reopen()`. */
  stall(): void;
  dispose(): Promise<void>;
}

export async function openVaultDoor(app: RequestListener): Promise<VaultDoor> {
  let state: VaultDoorState = 'open';
  const held: ServerResponse[] = [];
  const handler: RequestListener = (req, res) => {
    if (state === 'stalling' && req.method === 'POST' && req.url?.startsWith('/v1/tokens')) {
      held.push(res);
      return;
    }
    app(req, res);
  };
  let listening: Listening | undefined = await listen(handler);
  const port = listening.port;
  const releaseHeld = () => held.splice(0).forEach((res) => res.destroy());
  return {
    url: `http://127.0.0.1:${port}`,
    state: () => state,
    async close() {
      state = 'closed';
      releaseHeld();
      await listening?.close();
      listening = undefined;
    },
    async reopen() {
      releaseHeld();
      // The same port, so the page's vault origin is the same vault again.
      listening ??= await listen(handler, port);
      state = 'open';
    },
    stall() {
      state = 'stalling';
    },
    async dispose() {
      releaseHeld();
      await listening?.close();
      listening = undefined;
    },
  };
}
