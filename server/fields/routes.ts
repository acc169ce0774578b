import { Router, type Request, type Response } from 'express';
import Negotiator from 'negotiator';
import { VaultError } from '../errors.ts';
import { clientIp, clientNetwork } from '../http/client-ip.ts';
import { errorBody, statusOf } from '../http/error-response.ts';
import { toVaultError } from '../http/errors.ts';
import { vaultOrigin } from '../http/vault-origin.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { TransportKeyring } from '../keys/transport-keys.ts';
import { canonicalOrigin } from '../merchants/origin.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { PinnedScript, WidgetAssets, WidgetFile } from './assets.ts';
import { renderFieldsDocument, renderWarmDocument, UNAVAILABLE_DOCUMENT } from './document.ts';

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
/**
 * The fields document holds nothing particular to one visit (the fields open
 * their session themselves), so a browser keeps it as long as `checkout.js`:
 * a card mounted again, or on the next page, starts without asking the vault.
 * Keys rotate with a grace period (a day by default) far longer than this.
 */
const FIELDS_DOCUMENT_CACHE = SHORT_CACHE;

/**
 * The warm document's policy: the fields document's, less what a document
 * without script needs not (connections, images, fonts), framable by any
 * page, as checkout.js is loadable by any page: it carries no key and shows
 * nothing.
 */
const WARM_CSP = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "base-uri 'none'", "form-action 'none'", 'frame-ancestors *'].join('; ');

const CONTENT_TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
/** Best first, when the client accepts several equally: brotli is the smallest. */
const ENCODINGS = ['br', 'gzip', 'identity'] as const;

/**
 * Sends a file of the widget in the encoding the client accepts best, as the
 * build compressed it (brotli, else gzip, else as is); caches keep one copy
 * per `Accept-Encoding`.
 */
function sendWidgetFile(req: Request, res: Response, file: WidgetFile): void {
  const encoding = new Negotiator(req).encodings(ENCODINGS, { preferred: ENCODINGS })[0];
  const body = encoding === 'br' ? file.br : encoding === 'gzip' ? file.gzip : undefined;
  res.vary('Accept-Encoding');
  if (body === undefined) {
    res.send(file.source);
  } else {
    res.set('Content-Encoding', encoding).send(body);
  }
}

export function fieldsRoutes(deps: {
  widget: WidgetAssets;
  merchants: MerchantDirectory;
  keyring: TransportKeyring;
  limits: { perIp: RateLimiter };
  /** `TESSERA_PUBLIC_URL`'s origin: the vault's own pages (the hosted payment page) may embed any merchant's fields. */
  publicOrigin: string | undefined;
}): Router {
  const router = Router();
  const { widget } = deps;
  const jwks = recentJwks(deps.keyring);

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
    // A refusal is never cached: an origin the merchant allows a minute later works at once.
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    if (widget.fields === undefined) return unavailable(res, 503);
    // Each document opens a session: count it like any other session.
    await deps.limits.perIp.hit(`ip:${clientNetwork(clientIp(req))}`);

    const merchant = await deps.merchants.byPublishableKey(key);
    if (merchant === undefined) return unavailable(res, 401);
    // The vault's own origin serves only its hosted payment page, which shows a merchant's link with that merchant's fields.
    const own = vaultOrigin(req, deps.publicOrigin);
    // A stored origin from before origins were checked strictly must not reach the CSP header either.
    if (!(merchant.allowed_origins.includes(origin) || origin === own) || canonicalOrigin(origin) !== origin) return unavailable(res, 403);

    res
      .status(200)
      .set({
        'Content-Security-Policy': [...FIELDS_CSP, `frame-ancestors ${origin}`].join('; '),
        'Cache-Control': FIELDS_DOCUMENT_CACHE,
        Link: fieldsPreloads(widget.fields),
      })
      .type('html')
      .send(
        renderFieldsDocument(
          { publishableKey: merchant.publishable_key, parentOrigin: origin, jwks: await jwks() },
          widget.fields,
        ),
      );
  });

  // Framed by checkout.js once the page is parsed, before any key is known: see renderWarmDocument. It names the build's
  // hashed assets, so it is cached like checkout.js, which names it: a deploy reaches both within 5 minutes.
  router.get('/v1/fields/warm', (_req, res) => {
    res.set({ 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    if (widget.fields === undefined) return unavailable(res, 503);
    res
      .status(200)
      .set({ 'Content-Security-Policy': WARM_CSP, 'Cache-Control': SHORT_CACHE, Link: fieldsPreloads(widget.fields) })
      .type('html')
      .send(renderWarmDocument(widget.fields));
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

  // Only the build's scripts and stylesheets, from memory: a source map left in dist/ by a debugging build is not served.
  router.get(/^\/v1\/assets\//, (req, res) => {
    const file = widget.assets.get(req.path);
    res.set('X-Content-Type-Options', 'nosniff');
    if (file === undefined) return void res.status(404).type('text/plain').send('Not found.\n');
    res.set({ 'Content-Type': CONTENT_TYPES[req.path.slice(req.path.lastIndexOf('.') + 1)]!, 'Cache-Control': IMMUTABLE, 'Cross-Origin-Resource-Policy': 'same-origin' });
    sendWidgetFile(req, res, file);
  });

  return router;
}

function serveScript(router: Router, path: string, script: PinnedScript | undefined, contentType: string): void {
  const send = (req: Request, res: Response, cacheControl: string) => {
    if (script === undefined) return void res.status(503).type('text/plain').send('The widget is not built; run `npm run build`.\n');
    res.set({ ...CROSS_ORIGIN_SCRIPT, 'Cache-Control': cacheControl }).type(contentType);
    sendWidgetFile(req, res, script);
  };
  router.get(path, (req, res) => send(req, res, SHORT_CACHE));
  if (script !== undefined) router.get(`/v1/${script.hashedName}`, (req, res) => send(req, res, IMMUTABLE));
}

/** How long a fields document may embed a JWKS read earlier. */
const JWKS_REUSE_MS = 1_000;

/**
 * The vault's JWKS as the fields documents embed it, read at most once a
 * second: it was the document's one database round trip, a cold mount waits
 * for it, and at load its tail was tens of milliseconds. A second's delay in
 * showing a newly rotated key is nothing beside the five minutes browsers
 * keep the document, and the key it replaces keeps decrypting for its grace
 * period (a day by default). A failed read is not kept.
 */
function recentJwks(keyring: TransportKeyring): () => Promise<Awaited<ReturnType<TransportKeyring['jwks']>>> {
  let recent: { jwks: ReturnType<TransportKeyring['jwks']>; until: number } | undefined;
  return () => {
    const now = Date.now();
    if (recent === undefined || recent.until <= now) {
      const jwks = keyring.jwks();
      recent = { jwks, until: now + JWKS_REUSE_MS };
      jwks.catch(() => {
        if (recent?.jwks === jwks) recent = undefined;
      });
    }
    return recent.jwks;
  };
}

/**
 * The fields' script (and any stylesheet) named in a `Link` header: Chromium
 * starts these fetches as it commits the document, before it has set up the
 * frame's script context and parsed the markup where they are named, which
 * on a cold start was the longest wait before the script was requested.
 */
function fieldsPreloads(fields: { script: string; styles: string[] }): string {
  return [`<${fields.script}>; rel=modulepreload`, ...fields.styles.map((href) => `<${href}>; rel=preload; as=style`)].join(', ');
}

function unavailable(res: Response, status: number): void {
  res
    .status(status)
    .set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'")
    .type('html')
    .send(UNAVAILABLE_DOCUMENT);
}
