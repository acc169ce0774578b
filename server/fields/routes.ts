import express, { Router, type Response } from 'express';
import { VaultError } from '../errors.ts';
import { clientIp, clientNetwork } from '../http/client-ip.ts';
import { errorBody, statusOf } from '../http/error-response.ts';
import { toVaultError } from '../http/errors.ts';
import { vaultOrigin } from '../http/vault-origin.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { canonicalOrigin } from '../merchants/origin.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { FieldsSessions } from '../sessions/service.ts';
import type { PinnedScript, WidgetAssets } from './assets.ts';
import { renderFieldsDocument, UNAVAILABLE_DOCUMENT } from './document.ts';

const FIELDS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
];

/** Headers for scripts that merchant pages on any origin load. */
const CROSS_ORIGIN_SCRIPT = {
  'Access-Control-Allow-Origin': '*',
  'Cross-Origin-Resource-Policy': 'cross-origin',
  'X-Content-Type-Options': 'nosniff',
};
const SHORT_CACHE = 'public, max-age=300';
const IMMUTABLE = 'public, max-age=31536000, immutable';

export function fieldsRoutes(deps: {
  widget: WidgetAssets;
  merchants: MerchantDirectory;
  sessions: FieldsSessions;
  keyring: TransportKeyring;
  limits: { perIp: RateLimiter };
  /** `TESSERA_PUBLIC_URL`'s origin: the vault's own pages (the hosted payment page) may embed any merchant's fields. */
  publicOrigin: string | undefined;
}): Router {
  const router = Router();
  const { widget } = deps;

  serveScript(router, '/v1/checkout.js', widget.checkout, 'application/javascript');
  serveScript(router, '/v1/tessera.mjs', widget.esm, 'text/javascript');

  router.get('/v1/sri.json', (_req, res) => {
    const entry = (script: PinnedScript | undefined) =>
      script === undefined ? undefined : { url: `/v1/${script.hashedName}`, integrity: script.integrity };
    res.set({ ...CROSS_ORIGIN_SCRIPT, 'Cache-Control': SHORT_CACHE }).json({
      'checkout.js': entry(widget.checkout),
      'tessera.mjs': entry(widget.esm),
    });
  });

  router.get('/v1/fields', async (req, res) => {
    const key = typeof req.query['key'] === 'string' ? req.query['key'] : '';
    const origin = typeof req.query['origin'] === 'string' ? req.query['origin'] : '';
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    if (widget.fields === undefined) return unavailable(res, 503);
    // Each document opens a session: count it like any other session.
    deps.limits.perIp.hit(`ip:${clientNetwork(clientIp(req))}`);

    const merchant = await deps.merchants.byPublishableKey(key);
    if (merchant === undefined) return unavailable(res, 401);
    // The vault's own origin serves only its hosted payment page, which shows a merchant's link with that merchant's fields.
    const own = vaultOrigin(req, deps.publicOrigin);
    // A stored origin from before origins were checked strictly must not reach the CSP header either.
    if (!(merchant.allowed_origins.includes(origin) || origin === own) || canonicalOrigin(origin) !== origin) return unavailable(res, 403);

    const session = await deps.sessions.open(merchant, origin, undefined, own);
    res
      .status(200)
      .set('Content-Security-Policy', [...FIELDS_CSP, `frame-ancestors ${origin}`].join('; '))
      .type('html')
      .send(
        renderFieldsDocument(
          { publishableKey: merchant.publishable_key, parentOrigin: origin, session, jwks: await deps.keyring.jwks() },
          widget.fields,
        ),
      );
  });

  // Why the fields failed to load, for the loader's `error` event; the browser sets Origin, a page cannot forge it.
  router.get('/v1/fields/status', async (req, res) => {
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' });
    try {
      const key = typeof req.query['key'] === 'string' ? req.query['key'] : '';
      const merchant = await deps.merchants.byPublishableKey(key);
      if (merchant === undefined) throw new VaultError('unauthenticated', { param: 'key' });
      const origin = req.headers.origin ?? '';
      if (!merchant.allowed_origins.includes(origin) && origin !== vaultOrigin(req, deps.publicOrigin)) throw new VaultError('origin_not_allowed');
      res.json({ ok: true });
    } catch (error) {
      const vaultError = toVaultError(error);
      res.status(statusOf(vaultError)).json(errorBody(vaultError));
    }
  });

  // Source maps are not built for production; one left in dist/ by a debugging build is still not served.
  router.get(/^\/v1\/assets\/.*\.map$/i, (_req, res) => {
    res.status(404).set('X-Content-Type-Options', 'nosniff').type('text/plain').send('Not found.\n');
  });
  router.use(
    '/v1/assets',
    express.static(widget.fieldsDir, {
      immutable: true,
      maxAge: '1y',
      index: false,
      dotfiles: 'ignore',
      setHeaders: (res) => res.set({ 'X-Content-Type-Options': 'nosniff', 'Cross-Origin-Resource-Policy': 'same-origin' }),
    }),
  );

  return router;
}

function serveScript(router: Router, path: string, script: PinnedScript | undefined, contentType: string): void {
  const send = (res: Response, cacheControl: string) => {
    if (script === undefined) return res.status(503).type('text/plain').send('The widget is not built; run `npm run build`.\n');
    res.set({ ...CROSS_ORIGIN_SCRIPT, 'Cache-Control': cacheControl }).type(contentType).send(script.source);
  };
  router.get(path, (_req, res) => send(res, SHORT_CACHE));
  if (script !== undefined) router.get(`/v1/${script.hashedName}`, (_req, res) => send(res, IMMUTABLE));
}

function unavailable(res: Response, status: number): void {
  res
    .status(status)
    .set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'")
    .type('html')
    .send(UNAVAILABLE_DOCUMENT);
}
