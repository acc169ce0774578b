import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedEvent {
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** How the receiver answers the next request: a status and optional headers. */
export type Answer = { status: number; headers?: Record<string, string> };

export interface MerchantEndpoint {
  url: string;
  received: ReceivedEvent[];
  /** Answers to give, in order; once used up, every request gets 200. */
  answer(...answers: Answer[]): void;
  /** Answers every request held back (see `holdAfter`), and from now on answers at once. */
  release(): void;
  /** Resolves once `count` requests have arrived, or rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  close(): Promise<void>;
}

/**
 * A merchant's webhook endpoint on 127.0.0.1 (http, so TESSERA_WEBHOOK_ALLOW_LOCAL=1), recording every request, answering after `delayMs`.
 * With `holdAfter`, every request after the first `holdAfter` is recorded but left unanswered until `release()`: deliveries stay
 * in flight for as long as a crash test needs, however fast the vault sends them.
 */
export async function startMerchantEndpoint(options: { delayMs?: number; holdAfter?: number } = {}): Promise<MerchantEndpoint> {
  const received: ReceivedEvent[] = [];
  const queued: Answer[] = [];
  let held: (() => void)[] | undefined = options.holdAfter === undefined ? undefined : [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const answer = queued.shift() ?? { status: 200 };
      // A slow receiver keeps deliveries in flight, as a crash test needs.
      const respond = () => void setTimeout(() => res.writeHead(answer.status, answer.headers).end(), options.delayMs ?? 0);
      if (held && received.length > options.holdAfter!) held.push(respond);
      else respond();
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    answer: (...answers) => void queued.push(...answers),
    release() {
      const waiting = held ?? [];
      held = undefined;
      // A held request whose sender has gone (a killed vault) is answered into a closed socket: nothing happens.
      for (const respond of waiting) respond();
    },
    waitFor(count, timeoutMs = 10_000) {
      if (received.length >= count) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${count} webhooks arrived in ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(received)) });
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
