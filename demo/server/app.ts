import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router, type Express, type Request } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { accountRoutes } from './account-routes.ts';
import { CardAttempts } from './card-attempts.ts';
import { cardImportBody, cardImportRoutes } from './card-import-routes.ts';
import type { DemoMerchant, ShopLimits } from './config.ts';
import type { Shop } from './context.ts';
import { dashboardRoutes } from './dashboard-routes.ts';
import { dashboardSubscriptionRoutes } from './dashboard-subscription-routes.ts';
import type { ShopDb } from './db.ts';
import { errorHandler, ShopError } from './errors.ts';
import { SecretKeyRolls } from './key-rolls.ts';
import { LoginThrottle } from './login-throttle.ts';
import { loadSecretKey } from './secret-key.ts';
import { Sessions } from './sessions.ts';
import { shopRoutes } from './shop-routes.ts';
import { subscriptionRoutes } from './subscription-routes.ts';
import { VaultClient } from './vault-client.ts';
import { ShopWebhookEndpoint } from './webhook-endpoint.ts';
import { webhookRoutes } from './webhook-routes.ts';

export interface DemoDeps {
  /** The keys the vault wrote to `demo-merchant.json`; a secret key the shop rolled to since (in `shopDataDir`) wins. */
  merchant: DemoMerchant;
  /** The vault's origin, as the shopper's browser reaches it. */
  vaultUrl: string;
  /** The built pages (`dist/demo`). */
  pagesDir: string;
  /** The shop's own database (users, sessions, carts, orders, saved cards). */
  db: ShopDb;
  /** The shop's own data folder: its database, and the secret key it rolled to last (`vault-secret-key`). */
  shopDataDir: string;
  /** What signs in to `/dashboard`. */
  dashboardPassword: string;
  /**
   * Where the vault delivers the shop's events (`http://127.0.0.1:<port>/webhooks/tessera`, or
   * `DEMO_WEBHOOK_URL`); the shop registers it at the vault before it serves its first request.
   */
  webhookUrl: string;
  /** Card-attempt limits and sign-in lockout (`DEFAULT_LIMITS`, or the environment through `loadDemoConfig`). */
  limits: ShopLimits;
  log: Logger;
}

/**
 * The demo merchant's backend: serves the shop's pages, keeps its shoppers,
 * carts and orders, and calls the vault with the secret key. It is a separate
 * origin from the vault, as a real shop is, and it never receives card data:
 * only token names from the card fields (and, in cvc mode, the CVC handle,
 * an encrypted blob it passes to the vault as it came).
 */
export async function createDemoApp(deps: DemoDeps): Promise<Express> {
  const { merchant, vaultUrl, pagesDir, log, db, limits, shopDataDir } = deps;
  const vault = new VaultClient({ vaultUrl, secretKey: loadSecretKey(shopDataDir, merchant.secretKey) });
  const keyRolls = new SecretKeyRolls({ db, vault, shopDataDir, log });
  // Before the first request: a roll whose answer was lost when the shop last stopped may have ended the key just loaded.
  await keyRolls.resumePending();
  const webhookEndpoint = new ShopWebhookEndpoint({ vault, shopDataDir, url: deps.webhookUrl, log });
  // With the key the roll left: the vault lists its endpoints, and the shop finds its own again or makes one.
  await webhookEndpoint.register();
  const shop: Shop = {
    db,
    vault,
    sessions: new Sessions(db),
    cardAttempts: new CardAttempts(limits),
    logins: new LoginThrottle(db, limits),
    keyRolls,
    webhookEndpoint,
    log,
  };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = performance.now();
    // Read now: inside a router, req.path loses its prefix.
    const { method, path } = req;
    // Method, path and status only: bodies carry tokens and passwords, query strings search terms.
    res.on('finish', () => log.info({ method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request'));
    next();
  });
  // What a shop embedding the card fields must allow: the vault's script, its iframe, and the loader's status check.
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'", vaultUrl],
          frameSrc: [vaultUrl],
          connectSrc: ["'self'", vaultUrl],
          imgSrc: ["'self'", 'data:'],
          styleSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
          frameAncestors: ["'none'"],
        },
      },
    }),
  );

  // Outside /api: the vault is not a page of the shop, and the signature needs the body as sent, unparsed.
  app.use(webhookRoutes(shop));

  const api = Router();
  api.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  api.use(sameOriginWrites);
  // A file of cards to migrate is the one large body: its own parser and limit, on its own path, for the dashboard only.
  api.post('/dashboard/card-imports', cardImportBody(shop));
  api.use(express.json({ limit: '16kb' }));
  // The publishable key only: the secret key stays in this process.
  api.get('/config', (_req, res) => {
    res.json({ publishableKey: merchant.publishableKey, vaultUrl });
  });
  api.use(shopRoutes(shop));
  api.use(accountRoutes(shop));
  api.use(subscriptionRoutes(shop));
  api.use('/dashboard', dashboardRoutes(shop, deps.dashboardPassword));
  api.use('/dashboard', dashboardSubscriptionRoutes(shop));
  api.use('/dashboard', cardImportRoutes(shop));
  api.use(() => {
    throw new ShopError(404, 'not_found', 'No such endpoint.');
  });
  api.use(errorHandler(log));
  app.use('/api', api);

  app.use(express.static(pagesDir, { extensions: ['html'] }));
  app.use((_req, res) => {
    if (!existsSync(join(pagesDir, 'index.html'))) {
      res.status(503).type('text').send('The demo pages are not built: run `npm run build`.\n');
    } else {
      res.status(404).type('text').send('Not found.\n');
    }
  });
  return app;
}

/**
 * Cross-site request forgery: the session cookie is SameSite=Lax, and a
 * write must also come from the shop's own pages (a browser always sends
 * `Origin` with a cross-origin POST).
 */
function sameOriginWrites(req: Request, _res: unknown, next: () => void): void {
  const origin = req.get('origin');
  if (req.method !== 'GET' && req.method !== 'HEAD' && origin !== undefined && origin !== `${req.protocol}://${req.get('host')}`) {
    throw new ShopError(403, 'cross_origin', 'This request must come from the shop’s own pages.');
  }
  next();
}
