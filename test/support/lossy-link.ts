import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LossyLink {
  /** Call the vault through this URL instead of the vault's own. */
  url: string;
  /** Requests whose answers were lost so far (`METHOD /path`). */
  lost: string[];
  close(): Promise<void>;
}

/**
 * A network between a merchant's server and the vault that loses answers:
 * every request goes through to the vault, and the vault does the work, but
 * for a request `loseAnswer` picks, the connection is cut once the vault has
 * answered, so the caller never hears back — what a timeout or a reset on
 * the way back looks like to it.
 */
export async function startLossyLink(vaultUrl: string, loseAnswer: (method: string, path: string) => boolean): Promise<LossyLink> {
  const target = new URL(vaultUrl);
  const lost: string[] = [];
  const server = http.createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '/';
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: request.method, path, headers: { ...request.headers, host: target.host } },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          if (loseAnswer(request.method ?? 'GET', path)) {
            lost.push(`${request.method} ${path}`);
            response.socket?.destroy();
            return;
          }
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          response.end(Buffer.concat(chunks));
        });
      },
    );
    upstream.on('error', () => response.socket?.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lost,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
