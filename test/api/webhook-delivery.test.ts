import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebhookSender, type WebhookSenderOptions } from '../../server/webhooks/sender.ts';
import { newWebhookSecret } from '../../server/webhooks/signature.ts';
import { makeTestCertificates, type TestCertificates } from '../support/tls.ts';
import { startWebhookReceiver, stubResolver, type WebhookReceiver } from '../support/webhook-receiver.ts';

let tls: TestCertificates;
let receiver: WebhookReceiver;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  tls = await makeTestCertificates();
});
beforeEach(async () => {
  receiver = await started(startWebhookReceiver({ tls }));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A sender for a development vault (`TESSERA_WEBHOOK_ALLOW_LOCAL=1`) that trusts the test CA. */
function sender(options: WebhookSenderOptions = {}): WebhookSender {
  const made = new WebhookSender({ allowLocal: true, ca: tls.ca, ...options });
  cleanups.push(() => made.close());
  return made;
}

async function started<T extends { close(): Promise<void> }>(thing: Promise<T>): Promise<T> {
  const value = await thing;
  cleanups.push(() => value.close());
  return value;
}

const secret = newWebhookSecret();
const body = JSON.stringify({ id: 'evt_1', type: 'payment.captured', created_at: '2026-05-04T12:00:00Z', data: { object: { id: 'pay_1', amount: 4250 } } });
const message = (url: string, secrets: readonly string[] = [secret]) => ({ url, id: 'evt_4bX9kQ2mR7tY1wZ3nP5sV8', body, secrets });

/** A plain TCP server that accepts connections and does what it is told with them. */
async function tcpServer(onConnection: (socket: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('webhook delivery', () => {
  it('posts the event JSON with its content type and the three Standard Webhooks headers, to the URL’s host and path', async () => {
    const before = Math.floor(Date.now() / 1000);
    const result = await sender().deliver(message(receiver.url('localhost', '/hooks/tessera?shop=1')));
    expect(result).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
    const [request] = receiver.received;
    expect(request).toMatchObject({ method: 'POST', path: '/hooks/tessera?shop=1', body, servername: 'localhost' });
    expect(request!.headers).toMatchObject({
      host: `localhost:${receiver.port}`,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'webhook-id': 'evt_4bX9kQ2mR7tY1wZ3nP5sV8',
    });
    const timestamp = Number(request!.headers['webhook-timestamp']);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(new Webhook(secret).verify(request!.body, request!.headers as Record<string, string>)).toEqual(JSON.parse(body));
  });

  it('signs with every live secret, so a receiver holding either side of a rotation verifies the message', async () => {
    const [newer, older] = [newWebhookSecret(), newWebhookSecret()];
    await sender().deliver(message(receiver.url(), [newer, older]));
    const [request] = receiver.received;
    const headers = request!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(newer).verify(request!.body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(older).verify(request!.body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(newWebhookSecret()).verify(request!.body, headers)).toThrow();
  });

  it('sends the timestamp it is given, the same one it signed', async () => {
    const timestamp = Math.floor(Date.now() / 1000) - 60;
    await sender().deliver({ ...message(receiver.url()), timestamp });
    const [request] = receiver.received;
    expect(request!.headers['webhook-timestamp']).toBe(String(timestamp));
    expect(new Webhook(secret).verify(request!.body, request!.headers as Record<string, string>)).toEqual(JSON.parse(body));
  });

  it.each([200, 201, 202, 204, 299])('counts %i as delivered', async (status) => {
    receiver.answer((_request, response) => void response.writeHead(status).end());
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'delivered', status, latencyMs: expect.any(Number) });
  });

  it.each([300, 301, 302, 303, 304, 307, 308])('counts %i as a retry and follows no redirect', async (status) => {
    const elsewhere = await started(startWebhookReceiver({ tls }));
    receiver.answer((_request, response) => void response.writeHead(status, { location: elsewhere.url() }).end());
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'retry', status, latencyMs: expect.any(Number), error: 'redirect_not_followed' });
    expect(elsewhere.connections()).toBe(0);
  });

  it.each([400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 501, 502, 503, 504])('counts %i as a retry', async (status) => {
    receiver.answer((_request, response) => void response.writeHead(status).end('no'));
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'retry', status, latencyMs: expect.any(Number) });
  });

  it('counts 410 as gone, so the endpoint is disabled', async () => {
    receiver.answer((_request, response) => void response.writeHead(410).end());
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'gone', status: 410, latencyMs: expect.any(Number) });
  });

  it('reads Retry-After in seconds', async () => {
    receiver.answer((_request, response) => void response.writeHead(503, { 'retry-after': '120' }).end());
    expect(await sender().deliver(message(receiver.url()))).toMatchObject({ outcome: 'retry', status: 503, retryAfterSeconds: 120 });
  });

  it('reads Retry-After as an HTTP date', async () => {
    receiver.answer((_request, response) => void response.writeHead(429, { 'retry-after': new Date(Date.now() + 90_000).toUTCString() }).end());
    const result = await sender().deliver(message(receiver.url()));
    expect(result).toMatchObject({ outcome: 'retry', status: 429 });
    expect(result.retryAfterSeconds).toBeGreaterThanOrEqual(89);
    expect(result.retryAfterSeconds).toBeLessThanOrEqual(90);
  });

  it('reads Retry-After on a redirect too', async () => {
    receiver.answer((_request, response) => void response.writeHead(307, { location: '/elsewhere', 'retry-after': '5' }).end());
    expect(await sender().deliver(message(receiver.url()))).toMatchObject({ outcome: 'retry', status: 307, retryAfterSeconds: 5, error: 'redirect_not_followed' });
  });

  it('ignores a malformed Retry-After and a Retry-After on a delivered message', async () => {
    receiver.answer((_request, response) => void response.writeHead(503, { 'retry-after': 'soon' }).end());
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'retry', status: 503, latencyMs: expect.any(Number) });
    receiver.answer((_request, response) => void response.writeHead(200, { 'retry-after': '60' }).end());
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
  });

  it('keeps no part of the receiver’s answer in the result', async () => {
    receiver.answer((_request, response) =>
      void response.writeHead(500, { 'x-debug': 'internal detail 4242424242424242' }).end('Stack trace: 4242 4242 4242 4242 at /srv/app secret-token'),
    );
    const result = await sender().deliver(message(receiver.url()));
    expect(result).toEqual({ outcome: 'retry', status: 500, latencyMs: expect.any(Number) });
    expect(JSON.stringify(result)).not.toMatch(/4242|secret|internal|Stack/);
  });

  it('gives up after the time limit when the receiver does not answer, and says so', async () => {
    receiver.answer(() => {});
    const startedAt = performance.now();
    const result = await sender({ timeoutMs: 400 }).deliver(message(receiver.url()));
    const took = performance.now() - startedAt;
    expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'timeout' });
    expect(result.latencyMs).toBeGreaterThanOrEqual(395);
    expect(took).toBeLessThan(2_000);
    expect(receiver.received).toHaveLength(1);
  });

  it('gives up after the time limit when the TLS handshake never completes', async () => {
    const silent = await started(tcpServer(() => {}));
    const result = await sender({ timeoutMs: 400 }).deliver(message(`https://localhost:${silent.port}/hooks`));
    expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'timeout' });
  });

  it('gives up after the time limit when DNS never answers', async () => {
    const result = await sender({ timeoutMs: 300, resolver: stubResolver('never') }).deliver(message(receiver.url('localhost')));
    expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'timeout' });
    expect(receiver.connections()).toBe(0);
  });

  it('asks DNS again for the next message after a lookup that never ended', async () => {
    const resolver = stubResolver((call) => (call === 0 ? 'never' : ['127.0.0.1']));
    // Long enough for the second message's TLS handshake on a loaded machine.
    const send = sender({ timeoutMs: 1_000, resolver });
    expect(await send.deliver(message(receiver.url('localhost')))).toMatchObject({ outcome: 'retry', error: 'timeout' });
    expect(await send.deliver(message(receiver.url('localhost')))).toMatchObject({ outcome: 'delivered', status: 200 });
    expect(resolver.calls).toEqual(['localhost', 'localhost']);
  });

  it('counts a 2xx whose body never ends as delivered, and closes that connection at the time limit', async () => {
    receiver.answer((_request, response) => {
      response.writeHead(200);
      const drip = setInterval(() => response.write('.'), 50);
      response.on('close', () => clearInterval(drip));
    });
    const send = sender({ timeoutMs: 400 });
    expect(await send.deliver(message(receiver.url()))).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
    receiver.answer((_request, response) => void response.end('ok'));
    await send.deliver(message(receiver.url()));
    expect(receiver.received.map((request) => request.connection)).toEqual([1, 2]);
  });

  it('reads a small answer to its end and sends the next message on the same connection', async () => {
    const send = sender();
    for (let i = 0; i < 3; i++) expect((await send.deliver(message(receiver.url()))).outcome).toBe('delivered');
    expect(receiver.received.map((request) => request.connection)).toEqual([1, 1, 1]);
  });

  it('reads no more than maxResponseBytes of an answer and closes that connection instead', async () => {
    receiver.answer((_request, response) => void response.end(Buffer.alloc(1024 * 1024, 'x')));
    const send = sender({ maxResponseBytes: 16 * 1024 });
    expect(await send.deliver(message(receiver.url()))).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
    receiver.answer((_request, response) => void response.end('ok'));
    await send.deliver(message(receiver.url()));
    expect(receiver.received.map((request) => request.connection)).toEqual([1, 2]);
  });

  it('answers connection_refused when nothing listens', async () => {
    const closed = await tcpServer(() => {});
    await closed.close();
    expect(await sender().deliver(message(`https://localhost:${closed.port}/hooks`))).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'connection_refused' });
  });

  it('refuses a receiver whose certificate it does not trust', async () => {
    const result = await sender({ ca: undefined }).deliver(message(receiver.url()));
    expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'tls_failed' });
    expect(receiver.received).toHaveLength(0);
  });

  it('answers tls_failed when an https URL reaches a plain http server', async () => {
    const plain = await started(startWebhookReceiver());
    const result = await sender().deliver(message(`https://localhost:${plain.port}/hooks`));
    expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'tls_failed' });
    expect(plain.received).toHaveLength(0);
  });

  it('answers invalid_response when the answer is not HTTP', async () => {
    const garbage = await started(tcpServer((socket) => socket.once('data', () => socket.end('HELLO THERE\r\n\r\n'))));
    expect(await sender().deliver(message(`http://127.0.0.1:${garbage.port}/hooks`))).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'invalid_response' });
  });

  it('answers invalid_response to 101 Switching Protocols, which Node hands on to nobody', async () => {
    const upgrading = await started(tcpServer((socket) => socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'))));
    const result = await sender({ timeoutMs: 2_000 }).deliver(message(`http://127.0.0.1:${upgrading.port}/hooks`));
    expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'invalid_response' });
    expect(result.latencyMs).toBeLessThan(2_000);
  });

  it('waits for a receiver slower than the idle connection timeout, up to the time limit', async () => {
    receiver.answer((_request, response) => void setTimeout(() => response.end('ok'), 300));
    const result = await sender({ idleSocketMs: 100, timeoutMs: 2_000 }).deliver(message(receiver.url()));
    expect(result).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
  });

  it('sends over plain http to 127.0.0.1 and localhost under TESSERA_WEBHOOK_ALLOW_LOCAL', async () => {
    const plain = await started(startWebhookReceiver());
    const send = sender();
    expect((await send.deliver(message(plain.url('127.0.0.1')))).outcome).toBe('delivered');
    expect((await send.deliver(message(plain.url('localhost')))).outcome).toBe('delivered');
    expect(plain.received.map((request) => request.headers.host)).toEqual([`127.0.0.1:${plain.port}`, `localhost:${plain.port}`]);
  });

  it('sends to [::1] under TESSERA_WEBHOOK_ALLOW_LOCAL', async () => {
    const v6 = await started(startWebhookReceiver({ tls, host: '::1' }));
    expect(await sender().deliver(message(v6.url('[::1]')))).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
    expect(v6.received[0]!.headers.host).toBe(`[::1]:${v6.port}`);
  });

  it('refuses the same local URLs without TESSERA_WEBHOOK_ALLOW_LOCAL, before connecting', async () => {
    const send = sender({ allowLocal: false });
    for (const host of ['localhost', '127.0.0.1']) {
      expect(await send.deliver(message(receiver.url(host)))).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'url_not_allowed' });
    }
    expect(receiver.connections()).toBe(0);
  });

  it('sends a busy endpoint’s messages over one kept-alive connection and one DNS answer', async () => {
    const resolver = stubResolver(['127.0.0.1']);
    const send = sender({ resolver });
    for (let i = 0; i < 20; i++) expect((await send.deliver(message(receiver.url('localhost')))).outcome).toBe('delivered');
    expect(new Set(receiver.received.map((request) => request.connection))).toEqual(new Set([1]));
    expect(resolver.calls).toEqual(['localhost']);
  });

  it('opens no more than maxSocketsPerEndpoint connections however many messages are sent at once, and resolves the host once', async () => {
    const resolver = stubResolver(['127.0.0.1'], 50);
    const send = sender({ resolver, maxSocketsPerEndpoint: 3 });
    receiver.answer((_request, response) => void setTimeout(() => response.end('ok'), 10));
    const results = await Promise.all(Array.from({ length: 40 }, () => send.deliver(message(receiver.url('localhost')))));
    expect(results.every((result) => result.outcome === 'delivered')).toBe(true);
    expect(receiver.received).toHaveLength(40);
    expect(receiver.connections()).toBeLessThanOrEqual(3);
    expect(resolver.calls).toEqual(['localhost']);
  });

  it('resolves and checks the host again once its answer is older than resolutionTtlMs', async () => {
    const resolver = stubResolver(['127.0.0.1']);
    const send = sender({ resolver, resolutionTtlMs: 100 });
    await send.deliver(message(receiver.url('localhost')));
    await send.deliver(message(receiver.url('localhost')));
    await new Promise((resolve) => setTimeout(resolve, 150));
    await send.deliver(message(receiver.url('localhost')));
    expect(resolver.calls).toEqual(['localhost', 'localhost']);
  });

  it('remembers a failed lookup briefly, so a burst for a dead name is one lookup', async () => {
    const resolver = stubResolver(() => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    });
    const send = sender({ resolver });
    const results = await Promise.all(Array.from({ length: 10 }, () => send.deliver(message(receiver.url('localhost')))));
    expect(results.map((result) => result.error)).toEqual(Array(10).fill('dns_failure'));
    expect(resolver.calls).toHaveLength(1);
  });

  it('sends once more on a new connection when a kept-alive one was closed under it', async () => {
    receiver.answer((request, response, received) => {
      if (received.connection === 1 && receiver.received.filter((r) => r.connection === 1).length > 1) request.socket.destroy();
      else response.end('ok');
    });
    const send = sender();
    expect((await send.deliver(message(receiver.url()))).outcome).toBe('delivered');
    expect(await send.deliver(message(receiver.url()))).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
    expect(receiver.received.map((request) => request.connection)).toEqual([1, 1, 2]);
  });

  it('does not send again when a new connection is reset', async () => {
    receiver.answer((request) => request.socket.destroy());
    expect(await sender().deliver(message(receiver.url()))).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'connection_reset' });
    expect(receiver.received).toHaveLength(1);
  });

  it('throws a TypeError for a message with no secret, and sends nothing', async () => {
    await expect(sender().deliver(message(receiver.url(), []))).rejects.toThrow(TypeError);
    expect(receiver.connections()).toBe(0);
  });
});
