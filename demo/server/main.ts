import { join } from 'node:path';
import { pino } from 'pino';
import { createDemoApp } from './app.ts';
import { loadDashboardPassword, loadDemoConfig, loadDemoMerchant } from './config.ts';
import { openShopDb, type ShopDb } from './db.ts';

/**
 * The demo shop's backend, listening on 127.0.0.1:`DEMO_PORT` until
 * SIGINT/SIGTERM. `npm start` runs it once the vault is up; alone it needs a
 * vault that has written `<TESSERA_DATA_DIR>/demo-merchant.json`.
 */
const log = pino({
  base: { service: 'tessera-demo-shop' },
  timestamp: pino.stdTimeFunctions.isoTime,
  // Nothing logs these, but if a future line did, a secret must not reach the output.
  redact: { paths: ['secret_key', 'secretKey', 'authorization', 'body', 'password', 'cvc', 'token'], censor: '[redacted]' },
});

let db: ShopDb | undefined;
try {
  const config = loadDemoConfig();
  const merchant = loadDemoMerchant(config.dataDir);
  const dashboardPassword = loadDashboardPassword(config);
  db = await openShopDb(config.shopDataDir);
  const app = await createDemoApp({
    merchant,
    vaultUrl: config.vaultUrl,
    pagesDir: join(import.meta.dirname, '..', '..', 'dist', 'demo'),
    db,
    shopDataDir: config.shopDataDir,
    dashboardPassword,
    webhookUrl: config.webhookUrl,
    limits: config.limits,
    log,
  });
  const server = app.listen(config.port, '127.0.0.1', () => {
    log.info({ url: `http://localhost:${config.port}`, vault: config.vaultUrl, data: config.shopDataDir }, 'demo shop listening');
  });
  server.on('error', (error) => {
    log.fatal({ err: { type: error.name, message: error.message } }, 'demo shop could not listen');
    process.exit(1);
  });
  let stopping = false;
  // `npm start` forwards a signal the terminal may already have sent to the whole process group: stop once.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'demo shop stopping');
    server.close(() => {
      void db!.close().finally(() => process.exit(0));
    });
    server.closeAllConnections();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (error) {
  log.fatal({ err: { type: (error as Error).name, message: (error as Error).message } }, 'demo shop failed to start');
  await db?.close();
  process.exit(1);
}
