/**
 * The demo shop's backend for tests: a real `createDemoApp` on a loopback
 * port, with its own embedded database and a log file in a data folder under
 * the test artifacts (so the leak scan at the end of `npm test` reads both).
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createDemoApp } from '../../demo/server/app.ts';
import { DEFAULT_LIMITS, type DemoMerchant, type ShopLimits } from '../../demo/server/config.ts';
import { openShopDb, type ShopDb } from '../../demo/server/db.ts';
import { artifactsDir } from './vault.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, '..', '..', 'demo', 'server', 'migrations');
export const DEMO_PAGES_DIR = join(import.meta.dirname, '..', '..', 'dist', 'demo');
export const DASHBOARD_PASSWORD = 'dashboard-test-password';

export interface TestShop {
  url: string;
  dataDir: string;
  /** Every log line the shop wrote (JSON lines). */
  logFile: string;
  db: ShopDb;
  close(): Promise<void>;
}

/** A migrated shop database made once and copied for each test shop: creating PGlite takes seconds, copying milliseconds. */
async function shopTemplate(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR).sort()) hash.update(file).update(readFileSync(join(MIGRATIONS_DIR, file)));
  const dir = join(tmpdir(), `tessera-shop-template-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(join(dir, 'pgdata'))) return dir;
  const building = `${dir}.building-${process.pid}-${randomBytes(4).toString('hex')}`;
  await (await openShopDb(building)).close();
  try {
    renameSync(building, dir);
  } catch {
    rmSync(building, { recursive: true, force: true });
  }
  return dir;
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
}

export async function startTestShop(options: StartShopOptions): Promise<TestShop> {
  let dataDir = options.dataDir;
  if (dataDir === undefined) {
    dataDir = join(artifactsDir(), `${options.name ?? 'shop'}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dataDir, { recursive: true });
    cpSync(join(await shopTemplate(), 'pgdata'), join(dataDir, 'pgdata'), { recursive: true });
  }
  const db = await openShopDb(dataDir);
  const logFile = join(dataDir, 'shop.log');
  const log = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true, append: true }));
  const app = createDemoApp({
    merchant: options.merchant,
    vaultUrl: options.vaultUrl,
    pagesDir: DEMO_PAGES_DIR,
    db,
    dashboardPassword: DASHBOARD_PASSWORD,
    limits: { ...TEST_SHOP_LIMITS, ...options.limits },
    log,
  });
  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(options.port ?? 0, '127.0.0.1', () => resolve(listening)).once('error', reject);
  });
  let closed = false;
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}`,
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
