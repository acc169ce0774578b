import express, { type NextFunction, type Request, type Response } from 'express';
import { VaultError } from '../errors.ts';
import { findIllFormedText, illFormedError } from './well-formed.ts';

/**
 * Parses JSON bodies with a size limit, and turns every parser failure into
 * an API error without looking at the body: body-parser's errors carry the
 * raw body and JSON.parse messages quote it, and neither may reach a log or
 * a response. A parsed body holding a NUL or an unpaired surrogate in any
 * key or value, at any depth, is refused here, before any route sees it.
 */
export function jsonBody(limitBytes: number, larger: Record<string, number> = {}, csv: Record<string, number> = {}) {
  const parser = (limit: number) => express.json({ limit, strict: true, type: () => true });
  const parse = parser(limitBytes);
  // Endpoints ("METHOD /path") whose bodies are legitimately bigger, such as a bulk update.
  const parsers = new Map(Object.entries(larger).map(([endpoint, limit]) => [endpoint, parser(limit)]));
  // Endpoints that also take `text/csv`: the body reaches the route as a string (UTF-8), checked like JSON text.
  const csvParsers = new Map(Object.entries(csv).map(([endpoint, limit]) => [endpoint, express.text({ limit, type: () => true, defaultCharset: 'utf-8' })]));
  return (req: Request, res: Response, next: NextFunction) => {
    if (!hasBody(req)) {
      req.body = {};
      return next();
    }
    const csvParser = csvParsers.get(`${req.method} ${req.path}`);
    const parseThis = csvParser !== undefined && req.is('text/csv') ? csvParser : req.is('application/json') ? (parsers.get(`${req.method} ${req.path}`) ?? parse) : undefined;
    if (parseThis === undefined) return next(new VaultError('unsupported_media_type'));
    parseThis(req, res, (error?: unknown) => {
      if (error !== undefined) return next(parserError(error));
      const bad = findIllFormedText(req.body);
      next(bad === undefined ? undefined : illFormedError(bad.path, 'body'));
    });
  };
}

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function parserError(error: unknown): VaultError {
  const type = (error as { type?: unknown }).type;
  switch (type) {
    case 'entity.too.large':
      return new VaultError('body_too_large');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new VaultError('unsupported_media_type');
    case 'entity.parse.failed':
      return new VaultError('invalid_json');
    default:
      return new VaultError('invalid_json', { message: 'The request body could not be read.' });
  }
}
