import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';

/**
 * `routers`, in order, each handed only the requests whose path can be one
 * of its own, as one Express layer: the vault mounts seventeen routers at
 * `/`, and Express walks every route of every router before the one a
 * request is for (a tokenization passed some thirty routes on its way), and
 * enters each router's own layer even when only to be told to skip it. The
 * paths a router can answer are read from its routes when it is mounted:
 * the literal start of each route's path, up to two segments (`/v1/tokens`
 * for `/v1/tokens/:token/verify`), and of each middleware mounted on a path
 * (`router.use('/v1/payments', …)`). A router with middleware for every
 * path, or a route that starts with a parameter, is handed every request,
 * as before. The check is looser than Express's own matching — it ignores
 * case, as Express does by default, and lets through any path under a
 * prefix — so it never keeps a request from a route that would have
 * matched it. Routes added to the router after it is mounted are not seen:
 * the vault's routers are complete when their factory returns.
 */
export function onItsPaths(...routers: Router[]): RequestHandler {
  const gated = routers.map((router) => ({ router, prefixes: pathPrefixes(router) }));
  return (req: Request, res: Response, next: NextFunction) => {
    const path = req.path.toLowerCase();
    let at = 0;
    // Each router in turn, as Express would take them one layer after another: the next whose paths the
    // request's can be, when the one before passed the request on; an error goes straight to Express, which
    // hands it to the error handlers (never to a router).
    const passedOn = (error?: unknown): void => {
      if (error !== undefined && error !== null) return next(error);
      while (at < gated.length) {
        const { router, prefixes } = gated[at++]!;
        if (prefixes === undefined || isUnder(path, prefixes)) return void router(req, res, passedOn);
      }
      next();
    };
    passedOn();
  };
}

/** Whether `path` is one of `prefixes` or lies under one (`/v1/tokens/tok_1` under `/v1/tokens`). */
function isUnder(path: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) {
    if (path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === SLASH)) return true;
  }
  return false;
}

const SLASH = '/'.charCodeAt(0);

/** What Express's router keeps of each route and middleware (`router.stack`, in the router package's types). */
interface StackLayer {
  route?: { path: unknown } | undefined;
  rawPath?: unknown;
}

/** The lower-cased literal prefixes of every layer of `router`, or undefined when one of them could match any path. */
export function pathPrefixes(router: Router): string[] | undefined {
  const prefixes = new Set<string>();
  for (const layer of router.stack as StackLayer[]) {
    const paths = layer.route === undefined ? layer.rawPath : layer.route.path;
    for (const path of Array.isArray(paths) ? paths : [paths]) {
      const prefix = literalPrefix(path);
      if (prefix === undefined) return undefined;
      prefixes.add(prefix.toLowerCase());
    }
  }
  return [...prefixes];
}

/** A segment of a path pattern with nothing but plain characters: no parameter, wildcard, optional group or escape. */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~-]+$/;

/**
 * The first one or two whole segments of a path pattern that are plain
 * text: `/v1/tokens` for `/v1/tokens/:token`, `/pay` for `/pay/:id`,
 * `/v1/sri.json` for itself. A regular expression counts when it is
 * anchored at the start and spells its first segments out (`^\/v1\/assets\/`).
 */
function literalPrefix(path: unknown): string | undefined {
  const pattern = typeof path === 'string' ? path : path instanceof RegExp ? anchoredLiteral(path) : undefined;
  if (pattern === undefined || !pattern.startsWith('/')) return undefined;
  const segments: string[] = [];
  for (const segment of pattern.split('/').slice(1, 3)) {
    if (!PLAIN_SEGMENT.test(segment)) break;
    segments.push(segment);
  }
  // A segment followed by more of the pattern within itself (`/v1/fields{.:ext}`) is not whole: stop before it.
  while (segments.length > 0 && !isWholeSegment(pattern, `/${segments.join('/')}`)) segments.pop();
  return segments.length === 0 ? undefined : `/${segments.join('/')}`;
}

const isWholeSegment = (pattern: string, prefix: string): boolean => pattern.length === prefix.length || pattern[prefix.length] === '/';

/** The path a regular expression's anchored literal start spells (`^\/v1\/assets\/…` → `/v1/assets/`), without the rest. */
function anchoredLiteral(regexp: RegExp): string | undefined {
  if (regexp.flags.includes('m')) return undefined;
  const literal = /^\^((?:\\\/[A-Za-z0-9_~-]+)+\\\/)/.exec(regexp.source)?.[1];
  return literal?.replaceAll('\\/', '/');
}
