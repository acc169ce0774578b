/**
 * Loopback ports for tests, benchmarks and the fresh-clone check: the one
 * place that asks the kernel which ports are free.
 */
import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port free right now: the kernel picks it for port 0, then it is
 * released for whoever needs a port number before it can listen (PostgreSQL,
 * a shop whose origin is registered first). Nothing listens on it meanwhile,
 * so it also serves as an address where a server is switched off.
 */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Whether nothing listens on the loopback port now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
