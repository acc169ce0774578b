/**
 * A tiny HTTP load balancer on a loopback port, standing in for the one an
 * operator puts in front of several vault nodes (docs/operations.md): round
 * robin over the nodes whose `GET /healthz` answered 200 last, a request
 * whose node refuses the connection tried on the next one (nothing reached
 * the vault), and the client's address appended to `X-Forwarded-For`, as
 * nginx's `$proxy_add_x_forwarded_for` and HAProxy's `option forwardfor` do.
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Balancer {
  url: string;
  /** The nodes the last health checks found up. */
  healthy(): string[];
  close(): Promise<void>;
}

const HEALTH_INTERVAL_MS = 250;
const HEALTH_TIMEOUT_MS = 1000;

export async function startBalancer(nodes: readonly string[], options: { port?: number; host?: string } = {}): Promise<Balancer> {
  const up = new Set<string>(nodes);
  let turn = 0;

  const check = (node: string) =>
    new Promise<boolean>((resolve) => {
      const probe = request(new URL('/healthz', node), { timeout: HEALTH_TIMEOUT_MS }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      probe.on('timeout', () => probe.destroy());
      probe.on('error', () => resolve(false));
      probe.end();
    });
  const checks = setInterval(() => {
    for (const node of nodes) void check(node).then((ok) => (ok ? up.add(node) : up.delete(node)));
  }, HEALTH_INTERVAL_MS);

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forwardedFor = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
      const headers: IncomingHttpHeaders = { ...req.headers, 'x-forwarded-for': forwardedFor, 'x-forwarded-proto': 'http' };
      const candidates = [...up];
      const first = turn++;
      const attempt = (tries: number) => {
        if (candidates.length === 0 || tries >= candidates.length) {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('no vault node is up');
          return;
        }
        const node = candidates[(first + tries) % candidates.length]!;
        const upstream = request(new URL(req.url ?? '/', node), { method: req.method, headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', (error: NodeJS.ErrnoException) => {
          // Refused: nothing reached that node, so another may take the request. Anything later is the client's to retry.
          if (error.code === 'ECONNREFUSED') {
            up.delete(node);
            attempt(tries + 1);
          } else if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('the vault node went away');
          else res.destroy();
        });
        upstream.end(body);
      };
      attempt(0);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    healthy: () => [...up],
    async close() {
      clearInterval(checks);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
