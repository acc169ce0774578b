import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router, type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { z } from 'zod';
import { CART, CART_TOTAL } from './cart.ts';
import type { DemoMerchant } from './config.ts';
import { VaultClient, VaultRequestError, VaultUnreachableError, type VaultToken } from './vault-client.ts';

export interface DemoDeps {
  merchant: DemoMerchant;
  /** The vault's origin, as the shopper's browser reaches it. */
  vaultUrl: string;
  /** The built pages (`dist/demo`). */
  pagesDir: string;
  log: Logger;
}

/** An answer the shop gives its own pages: `{ error: { code, message } }`, the message written for the shopper. */
class ShopError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Tokens from the card fields are `tok_` and base62; anything else never reaches a vault URL path. */
const TokenBodySchema = z.strictObject({ token: z.string().regex(/^tok_[A-Za-z0-9]{1,64}$/) });

/**
 * The demo merchant's backend: serves the shop's pages, tells them which
 * publishable key and vault to use, and reads the tokens they send with the
 * secret key. It is a separate origin from the vault, as a real shop is.
 */
export function createDemoApp(deps: DemoDeps): Express {
  const { merchant, vaultUrl, pagesDir, log } = deps;
  const vault = new VaultClient({ vaultUrl, secretKey: merchant.secretKey });
  const app = express();
  app.disable('x-powered-by');

  app.use((req, res, next) => {
    const started = performance.now();
    // Read now: inside the `/api` router, req.path loses its prefix.
    const { method, path } = req;
    // Method, path and status only: bodies carry tokens, and a real shop's would carry personal data.
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
  app.use('/api', apiRoutes({ merchant, vaultUrl, vault, log }));
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

function apiRoutes({ merchant, vaultUrl, vault, log }: { merchant: DemoMerchant; vaultUrl: string; vault: VaultClient; log: Logger }): Router {
  const router = Router();
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  router.use(express.json({ limit: '1kb' }));

  // The publishable key only: the secret key stays in this process.
  router.get('/config', (_req, res) => {
    res.json({ publishableKey: merchant.publishableKey, vaultUrl });
  });

  router.get('/cart', (_req, res) => {
    res.json({
      currency: CART.currency,
      items: CART.items.map((item) => ({ name: item.name, quantity: item.quantity, amount: item.quantity * item.unitAmount })),
      total: CART_TOTAL,
    });
  });

  router.post('/checkout', async (req, res) => {
    const { token } = parseTokenBody(req.body);
    const stored = await readToken(vault, token, log);
    const orderId = `ord_${randomBytes(8).toString('hex')}`;
    res.status(201).json({
      order: { id: orderId, status: 'received', amount: CART_TOTAL, currency: CART.currency },
      ...tokenView(stored),
      // Honest about what happened: the vault has no payments API yet, so nothing was charged.
      message: `Order ${orderId} received with token ${stored.token} (payment capture comes with the payments API).`,
    });
  });

  router.post('/cards', async (req, res) => {
    const { token } = parseTokenBody(req.body);
    const stored = await readToken(vault, token, log);
    // A single-use token dies after one payment or 30 minutes; keeping it on an account would fail later, so refuse now.
    if (!stored.reusable) {
      throw new ShopError(422, 'token_not_reusable', 'This card was given for one payment only, so it cannot be saved. Add it again here to save it.');
    }
    res.status(201).json(tokenView(stored));
  });

  router.use(() => {
    throw new ShopError(404, 'not_found', 'No such endpoint.');
  });
  router.use(errorHandler(log));
  return router;
}

function parseTokenBody(body: unknown): { token: string } {
  const parsed = TokenBodySchema.safeParse(body);
  if (!parsed.success) throw new ShopError(400, 'parameter_invalid', 'Send a JSON body {"token":"tok_…"} with the token the card fields created.');
  return parsed.data;
}

/** What the shop's pages may show: never the fingerprint or anything else the shopper has no use for. */
function tokenView(stored: VaultToken) {
  const { brand, last4, exp_month: expMonth, exp_year: expYear } = stored.card;
  return { token: stored.token, reusable: stored.reusable, card: { brand, last4, expMonth, expYear } };
}

async function readToken(vault: VaultClient, token: string, log: Logger): Promise<VaultToken> {
  try {
    return await vault.readToken(token);
  } catch (error) {
    if (error instanceof VaultRequestError && error.code === 'token_not_found') {
      throw new ShopError(404, 'token_not_found', 'This card is unknown to the payment service or has expired. Please enter it again.');
    }
    if (error instanceof VaultUnreachableError || (error instanceof VaultRequestError && error.status === 503)) {
      log.warn({ error: safeError(error) }, 'vault unavailable');
      throw new ShopError(503, 'vault_unavailable', 'The payment service is not reachable right now. Nothing was done; please try again in a moment.');
    }
    if (error instanceof VaultRequestError) {
      // 401/403 mean this shop's secret key is wrong: an operator problem, not the shopper's.
      log.error({ vault_status: error.status, vault_code: error.code }, 'vault refused the request');
      throw new ShopError(502, 'vault_error', 'The payment service refused the request. Nothing was done; please try again later.');
    }
    throw error;
  }
}

function errorHandler(log: Logger) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const answer = toShopError(error);
    if (answer.status >= 500 && !(error instanceof ShopError)) {
      log.error({ error: { ...safeError(error), stack: error instanceof Error ? error.stack : undefined } }, 'request failed');
    }
    res.status(answer.status).json({ error: { code: answer.code, message: answer.message } });
  };
}

function toShopError(error: unknown): ShopError {
  if (error instanceof ShopError) return error;
  // body-parser's errors (client errors with a `type`): answered by status alone, since they carry the raw body.
  const parserError = error as { type?: unknown; status?: unknown } | null;
  if (typeof parserError?.type === 'string' && typeof parserError.status === 'number' && parserError.status < 500) {
    return parserError.status === 413
      ? new ShopError(413, 'body_too_large', 'The request body is too large.')
      : new ShopError(400, 'invalid_json', 'The request body could not be read as JSON.');
  }
  return new ShopError(500, 'internal_error', 'Something went wrong in the shop. Nothing was done; please try again.');
}

/**
 * Name, message and code, down the chain of causes (where a failed fetch
 * keeps its ECONNREFUSED): never an error's other properties, which can hold
 * request data.
 */
function safeError(error: unknown, depth = 0): Record<string, unknown> | undefined {
  if (!(error instanceof Error) || depth > 3) return undefined;
  return {
    type: error.name,
    message: error.message,
    code: (error as { code?: unknown }).code,
    cause: safeError(error.cause, depth + 1),
  };
}
