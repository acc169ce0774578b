/**
 * A front door to a real test vault for the shop's API tests: it forwards
 * every request as it came, except that a test may make it answer
 * `POST /v1/payments` itself with one of the contract's answers the vault
 * gives only under conditions a test cannot cheaply create (its own velocity
 * limits' 429 `rate_limited`, 422 `card_not_accepted`). The shop is pointed
 * at the door instead of the vault.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ContractAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface VaultFrontDoor {
  url: string;
  /** From now on, `POST /v1/payments` gets this answer and never reaches the vault. */
  answerPayments(answer: ContractAnswer): void;
  /** From now on, `POST /v1/payments` reaches the vault again. */
  forwardPayments(): void;
  /** How many `POST /v1/payments` came through the door, answered by it or forwarded. */
  paymentRequests(): number;
  close(): Promise<void>;
}

export async function openVaultFrontDoor(vaultUrl: string): Promise<VaultFrontDoor> {
  const vault = new URL(vaultUrl);
  let answer: ContractAnswer | undefined;
  let payments = 0;
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const upstream = request({ host: vault.hostname, port: vault.port, path: req.url, method: req.method, headers: { ...req.headers, host: vault.host } }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/v1/payments') {
      payments++;
      if (answer !== undefined) {
        const { status, body, headers } = answer;
        // The request is read to its end first, as the vault would.
        req.resume().on('end', () => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body)));
        return;
      }
    }
    forward(req, res);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answerPayments(next) {
      answer = next;
    },
    forwardPayments() {
      answer = undefined;
    },
    paymentRequests: () => payments,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
