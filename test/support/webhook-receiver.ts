import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TestCertificates } from './tls.ts';

export interface ReceivedWebhook {
  method: string;
  /** Path and query as requested. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The TLS server name (SNI) the client sent; `false` when it sent none, `undefined` over plain http. */
  servername: string | false | undefined;
  /** Which connection carried it: 1 for the receiver's first (first TLS session over https), and so on. */
  connection: number;
}

export type ReceiverHandler = (request: IncomingMessage, response: ServerResponse, received: ReceivedWebhook) => void;

export interface WebhookReceiver {
  port: number;
  /** A URL to this receiver, written with `host` (a name or address that reaches it). */
  url(host?: string, path?: string): string;
  received: ReceivedWebhook[];
  /** TCP connections accepted so far, TLS or not, whether or not a request followed. */
  connections(): number;
  /** How the next requests are answered; 200 `ok` until told. */
  answer(handler: ReceiverHandler): void;
  server: http.Server;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  /** Serve https with this certificate; plain http without. */
  tls?: TestCertificates;
  /** The address to listen on: 127.0.0.1 unless told (127.0.0.2, ::1…). */
  host?: string;
  /** 0 (any free port) unless told. */
  port?: number;
}

/** A merchant's webhook receiver on a loopback address, recording every request it gets. */
export async function startWebhookReceiver(options: ReceiverOptions = {}): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const connectionIds = new WeakMap<Socket, number>();
  let connections = 0;
  let handler: ReceiverHandler = (_request, response) => void response.end('ok');

  const listener = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const socket = request.socket as TLSSocket;
      const record: ReceivedWebhook = {
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        servername: options.tls === undefined ? undefined : (socket.servername ?? false),
        connection: connectionIds.get(socket) ?? 0,
      };
      received.push(record);
      handler(request, response, record);
    });
  };
  const server = options.tls === undefined ? http.createServer(listener) : https.createServer({ cert: options.tls.cert, key: options.tls.key }, listener);
  let secureConnections = 0;
  server.on('connection', (socket: Socket) => {
    connections += 1;
    connectionIds.set(socket, connections);
  });
  // Requests over TLS arrive on the TLS socket, a new object: numbered in handshake order.
  server.on('secureConnection', (socket: TLSSocket) => connectionIds.set(socket, ++secureConnections));
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls === undefined ? 'http' : 'https';
  return {
    port,
    url: (urlHost = host.includes(':') ? `[${host}]` : host, path = '/hooks') => `${scheme}://${urlHost}:${port}${path}`,
    received,
    connections: () => connections,
    answer(next) {
      handler = next;
    },
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface StubResolver {
  (host: string): Promise<readonly string[]>;
  /** Every host asked for, in order. */
  calls: string[];
}

/**
 * A DNS answer chosen by the test, as a hostile or changing DNS server
 * would give it: `answers(n, host)` is the n-th answer (0 first); `never`
 * is a lookup that never ends.
 */
export function stubResolver(
  answers: readonly string[] | 'never' | ((call: number, host: string) => readonly string[] | 'never'),
  delayMs = 0,
): StubResolver {
  const calls: string[] = [];
  const resolver = async (host: string) => {
    const call = calls.push(host) - 1;
    const answer = typeof answers === 'function' ? answers(call, host) : answers;
    if (answer === 'never') return new Promise<readonly string[]>(() => {});
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return answer;
  };
  return Object.assign(resolver, { calls });
}
