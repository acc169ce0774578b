import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../../support/api.ts';
import { startVaultProcess } from '../../support/vault-process.ts';
import { newDataDir, startTestVault, type TestVault } from '../../support/vault.ts';

/**
 * Review finding: the vault's HTTP server ran with Node's defaults (a minute
 * for headers, five for a request, no idle limit), so a few clients sending
 * one byte a second could hold its connections for minutes (slowloris). The
 * timeouts are now set in one place (`server/http/server.ts`) used by
 * `npm run vault` and by this test vault, here made short so the test is.
 */
const TIMEOUTS = { headersMs: 1_000, requestMs: 2_000, keepAliveMs: 1_000, idleMs: 5_000 };
/** Room for Node's periodic check (a quarter of the headers timeout) and a busy machine. */
const SLACK_MS = 2_500;

interface SlowClient {
  /** Milliseconds from connecting until the vault closed the connection. */
  closedAfterMs: number;
  /** Everything the vault sent back. */
  received: string;
  /** Whether the client still had bytes to send when the vault closed. */
  cutShort: boolean;
}

/** A raw socket that sends `head` at once, then `drip` one byte per `everyMs`, until the vault closes or 20 s pass. */
function slowClient(url: string, head: string, drip: string, everyMs: number): Promise<SlowClient> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(Number(port), '127.0.0.1');
    let received = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => socket.destroy(), 20_000);
    socket.on('data', (chunk) => (received += chunk));
    // Once connected, an error is the vault letting go too: a byte written just as it closed comes back as a reset.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: Date.now() - started, received, cutShort: sent < drip.length });
    });
    const failToConnect = (error: Error) => reject(error);
    socket.once('error', failToConnect);
    socket.once('connect', () => {
      socket.off('error', failToConnect);
      if (head) socket.write(head);
      if (!drip) return;
      timer = setInterval(() => {
        if (sent < drip.length && socket.writable) socket.write(drip[sent++]!);
      }, everyMs);
    });
  });
}

/** 408 with `Connection: close`, or nothing at all: either way the vault let go. */
const closedOrTimedOut = (received: string) => received === '' || /^HTTP\/1\.1 408 /.test(received);

describe('slow clients', () => {
  let vault: TestVault;

  beforeAll(async () => {
    vault = await startTestVault({
      name: 'attack-timeouts',
      env: {
        TESSERA_HTTP_HEADERS_TIMEOUT_MS: String(TIMEOUTS.headersMs),
        TESSERA_HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUTS.requestMs),
        TESSERA_HTTP_KEEP_ALIVE_TIMEOUT_MS: String(TIMEOUTS.keepAliveMs),
        TESSERA_HTTP_IDLE_TIMEOUT_MS: String(TIMEOUTS.idleMs),
      },
    });
  });
  afterAll(() => vault?.close());

  it('closes a connection whose headers arrive one byte a second once the headers timeout has passed', async () => {
    const client = await slowClient(vault.url, 'GET /healthz HTTP/1.1\r\n', 'Host: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n', 1_000);
    expect(client.cutShort).toBe(true);
    expect(closedOrTimedOut(client.received), client.received).toBe(true);
    expect(client.closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.headersMs - 100);
    expect(client.closedAfterMs).toBeLessThan(TIMEOUTS.headersMs + SLACK_MS);
  });

  it('answers 408 and closes a connection whose body arrives one byte a second once the request timeout has passed', async () => {
    const body = JSON.stringify({ name: 'Slow Shop', allowed_origins: ['https://slow.example'] });
    const head =
      `POST /v1/merchants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${vault.adminKey}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const client = await slowClient(vault.url, head, body, 1_000);
    expect(client.cutShort).toBe(true);
    expect(client.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(client.closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.requestMs - 100);
    expect(client.closedAfterMs).toBeLessThan(TIMEOUTS.requestMs + SLACK_MS);
    const merchants = await api(vault.url, 'GET', '/v1/merchants?limit=100', { key: vault.adminKey });
    expect(merchants.body.data.map((merchant: { name: string }) => merchant.name)).not.toContain('Slow Shop');
  });

  it('closes a connection that never sends anything', async () => {
    const client = await slowClient(vault.url, '', '', 1_000);
    expect(closedOrTimedOut(client.received), client.received).toBe(true);
    expect(client.closedAfterMs).toBeLessThan(TIMEOUTS.headersMs + SLACK_MS);
  });

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const client = await slowClient(vault.url, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', '', 1_000);
    expect(client.received).toMatch(/^HTTP\/1\.1 200 /);
    expect(client.received).toMatch(/Keep-Alive: timeout=1/i);
    expect(client.closedAfterMs).toBeLessThan(TIMEOUTS.keepAliveMs + SLACK_MS);
  });

  it('serves ordinary clients as usual while slow ones are being cut off', async () => {
    const slow = Array.from({ length: 5 }, () => slowClient(vault.url, 'GET /healthz HTTP/1.1\r\n', 'Host: 127.0.0.1\r\n\r\n', 1_000));
    let allCut = false;
    const cut = Promise.all(slow).finally(() => (allCut = true));
    // Ordinary requests one after another for as long as the slow clients hold their connections.
    let served = 0;
    for (; !allCut; served++) {
      expect((await api(vault.url, 'GET', '/healthz')).status).toBe(200);
      if (served >= 3) continue;
      const created = await api(vault.url, 'POST', '/v1/merchants', {
        key: vault.adminKey,
        json: { name: `Quick Shop ${served}`, allowed_origins: ['https://quick.example'] },
      });
      expect(created.status).toBe(201);
    }
    expect(served).toBeGreaterThanOrEqual(3);
    for (const client of await cut) expect(client.cutShort).toBe(true);
  });
});

describe('npm run vault', () => {
  it('listens with the same timeouts, read from its environment', async () => {
    const vault = await startVaultProcess({
      dataDir: await newDataDir('pglite', 'attack-timeouts-process'),
      env: { TESSERA_HTTP_HEADERS_TIMEOUT_MS: String(TIMEOUTS.headersMs), TESSERA_HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUTS.requestMs) },
    });
    try {
      const client = await slowClient(vault.url, 'GET /healthz HTTP/1.1\r\n', 'Host: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n', 1_000);
      expect(client.cutShort).toBe(true);
      expect(closedOrTimedOut(client.received), client.received).toBe(true);
      expect(client.closedAfterMs).toBeLessThan(TIMEOUTS.headersMs + SLACK_MS);
    } finally {
      await vault.kill('SIGTERM');
    }
  });
});
