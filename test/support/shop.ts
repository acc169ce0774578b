/**
 * The demo shop's backend for tests: a real `createDemoApp` on a loopback
 * port, with its own embedded database and a log file in a data folder under
 * the test artifacts (so the leak scan at the end of `npm test` reads both).
 * It registers its webhook endpoint at start as under `npm start`; a vault
 * started without `TESSERA_WEBHOOK_ALLOW_LOCAL: '1'` refuses its loopback
 * URL, and that shop runs without webhooks (its log says so).
 */
import { freePort } from './ports.ts';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import type { Express } from 'express';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createDemoApp } from '../../demo/server/app.ts';
import { DEFAULT_LIMITS, defaultWebhookUrl, type DemoMerchant, type ShopLimits } from '../../demo/server/config.ts';
import { openShopDb, type ShopDb } from '../../demo/server/db.ts';
import { DEMO_MERCHANT_ORIGIN } from '../../server/merchants/demo.ts';
import { api, openSession, type ApiResponse, type RequestOptions } from './api.ts';
import { CARDS, cardPlaintext, encryptCard } from './cards.ts';
import { artifactsDir, copyOfEmptyPglite, madeOnce } from './vault.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, '..', '..', 'demo', 'server', 'migrations');
export const DEMO_PAGES_DIR = join(import.meta.dirname, '..', '..', 'dist', 'demo');
export const DASHBOARD_PASSWORD = 'dashboard-test-password';

export interface TestShop {
  url: string;
  port: number;
  dataDir: string;
  /** Every log line the shop wrote (JSON lines). */
  logFile: string;
  db: ShopDb;
  close(): Promise<void>;
}

/** Where the shop's migrated template database lives, named by its migrations (made by the first test shop). */
export function shopTemplateDir(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR).sort()) hash.update(file).update(readFileSync(join(MIGRATIONS_DIR, file)));
  return join(tmpdir(), `tessera-shop-template-${hash.digest('hex').slice(0, 16)}`);
}

/**
 * A migrated shop database made once and copied for each test shop: creating PGlite takes seconds, copying
 * milliseconds. Made from a copy of the empty PGlite the vault's templates start from (the same PGlite, so the
 * same initdb), not an initdb of its own.
 */
async function shopTemplate(): Promise<string> {
  return madeOnce(shopTemplateDir(), async (building) => (await openShopDb(await copyOfEmptyPglite(building))).close());
}

/**
 * The shop's own limits, except those per client: every test's requests come
 * from 127.0.0.1, so one client's allowance would be shared by the whole
 * run. Tests of the per-client limits set them.
 */
export const TEST_SHOP_LIMITS: ShopLimits = { ...DEFAULT_LIMITS, cardAttemptsPerClient: 100_000, loginFailuresPerClient: 100_000 };

export interface StartShopOptions {
  merchant: DemoMerchant;
  vaultUrl: string;
  port?: number;
  name?: string;
  /** Over `TEST_SHOP_LIMITS`. */
  limits?: Partial<ShopLimits>;
  /** A data folder an earlier (closed) test shop used: the same database, as after a restart. */
  dataDir?: string;
  /** Where the vault is to send the shop's webhooks, when not its own receiver (`DEMO_WEBHOOK_URL`). */
  webhookUrl?: string;
}

export { freePort };

export async function startTestShop(options: StartShopOptions): Promise<TestShop> {
  let dataDir = options.dataDir;
  if (dataDir === undefined) {
    dataDir = join(artifactsDir(), `${options.name ?? 'shop'}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dataDir, { recursive: true });
    // With the template's modification times, as newDataDir copies the vault's (the leak step reads only what was written).
    cpSync(join(await shopTemplate(), 'pgdata'), join(dataDir, 'pgdata'), { recursive: true, preserveTimestamps: true });
  }
  // Known before the app is made: the shop registers its webhook URL, port included, before it serves.
  const port = options.port ?? (await freePort());
  const db = await openShopDb(dataDir);
  const logFile = join(dataDir, 'shop.log');
  const log = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true, append: true }));
  let app: Express;
  try {
    app = await createDemoApp({
      merchant: options.merchant,
      vaultUrl: options.vaultUrl,
      pagesDir: DEMO_PAGES_DIR,
      db,
      shopDataDir: dataDir,
      dashboardPassword: DASHBOARD_PASSWORD,
      webhookUrl: options.webhookUrl ?? defaultWebhookUrl(port),
      limits: { ...TEST_SHOP_LIMITS, ...options.limits },
      log,
    });
  } catch (error) {
    await db.close();
    throw error;
  }
  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(port, '127.0.0.1', () => resolve(listening)).once('error', reject);
  });
  let closed = false;
  return {
    url: `http://localhost:${port}`,
    port,
    dataDir,
    logFile,
    db,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await db.close();
    },
  };
}

/**
 * A shopper's browser, as far as the shop's backend can tell: a cookie jar.
 * `fromAddress` makes it another client: its requests leave from that
 * loopback address (any 127.x.y.z works on Linux), which the shop sees as
 * the client's IP.
 */
export class Shopper {
  cookie: string | undefined;
  lastSetCookie: string | undefined;

  constructor(
    private readonly shop: () => Pick<TestShop, 'url'>,
    private readonly fromAddress?: string,
  ) {}

  async call(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const withCookie = { ...options, headers: { ...options.headers, ...(this.cookie === undefined ? {} : { cookie: this.cookie }) } };
    const response = this.fromAddress === undefined ? await api(this.shop().url, method, path, withCookie) : await this.#callFrom(method, path, withCookie);
    const setCookie = response.headers.get('set-cookie');
    if (setCookie) {
      this.lastSetCookie = setCookie;
      this.cookie = setCookie.split(';')[0];
    }
    return response;
  }

  /** The same request through node:http, which can choose the local address (fetch cannot). */
  #callFrom(method: string, path: string, options: RequestOptions): Promise<ApiResponse> {
    const url = new URL(path, this.shop().url);
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    const headers: Record<string, string> = { ...options.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: url.port, path: url.pathname + url.search, method, headers, localAddress: this.fromAddress, timeout: 15_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const responseHeaders = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
            }
            const json = responseHeaders.get('content-type')?.includes('json') ?? false;
            resolve({ status: res.statusCode ?? 0, headers: responseHeaders, body: json ? JSON.parse(text) : text, text });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

/**
 * A token made the way the card fields on the shop's pages make it: a
 * session for the demo merchant's origin, then the card encrypted to the
 * vault. Single-use unless `reusable`.
 */
export async function fieldsToken(
  vaultUrl: string,
  merchant: DemoMerchant,
  options: { reusable?: boolean; number?: string; customer?: string } = {},
): Promise<string> {
  const session = await openSession(vaultUrl, {
    id: merchant.merchantId,
    publishableKey: merchant.publishableKey,
    secretKey: merchant.secretKey,
    allowedOrigins: [DEMO_MERCHANT_ORIGIN],
  });
  const created = await api(vaultUrl, 'POST', '/v1/tokens', {
    json: {
      key: merchant.publishableKey,
      session,
      card: await encryptCard(vaultUrl, cardPlaintext({ number: options.number ?? CARDS.visa.number, cvc: CARDS.visa.cvc })),
      reusable: options.reusable ?? false,
      ...(options.customer === undefined ? {} : { customer: options.customer }),
    },
  });
  if (created.status !== 201) throw new Error(`tokenizing failed: ${created.status} ${created.text}`);
  return created.body.token;
}
