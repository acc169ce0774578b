import type { Request, Response } from 'express';
import type { StoredResponse } from '../idempotency/idempotency.ts';

/** Idempotency scope of the admin key's requests (merchant creation, key rotation). */
export const ADMIN_SCOPE = 'admin';

/** The request's `Idempotency-Key` header, if any. */
export const idempotencyKeyOf = (req: Request): string | undefined => req.header('Idempotency-Key');

/**
 * What an Idempotency-Key is bound to: the endpoint as well as the parsed
 * body. One scope (a merchant, a publishable key, the admin) spans several
 * endpoints, so a key first used on one endpoint and sent again to another
 * is a mismatch (422), never the first endpoint's stored response.
 */
export function idempotentRequest(req: Request, body: unknown): { method: string; path: string; body: unknown } {
  return { method: req.method, path: `${req.baseUrl}${req.path}`, body };
}

/** Sends a response as the work produced it, or as stored by the first request with this key. */
export function sendStored(res: Response, stored: StoredResponse & { replayed: boolean }): void {
  if (stored.replayed) res.setHeader('Idempotent-Replayed', 'true');
  res.status(stored.status).type('application/json').send(stored.body);
}
