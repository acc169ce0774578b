import type { Request, Response } from 'express';
import { auditSource, type AuditEntry, type AuditSource } from '../audit/audit.ts';
import type { IdempotencyClaim, IdempotencyStore, StoredResponse } from '../idempotency/idempotency.ts';
import type { Merchant } from '../merchants/service.ts';
import { merchantOf } from './auth.ts';

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

/** Who asks for a merchant's change, from where, and its Idempotency-Key's claim: what a service records with the change. */
export interface MerchantWrite {
  merchant: Merchant;
  actor: string;
  source: AuditSource;
  claim: IdempotencyClaim | undefined;
}

/**
 * Runs a merchant's change under the request's Idempotency-Key, in the
 * merchant's scope; `entry` is the request's audit entry (`auditing`), made
 * by the route before it parses the body, so a refused body is audited too.
 */
export function runForMerchant(
  store: IdempotencyStore,
  req: Request,
  entry: Pick<AuditEntry, 'actor'>,
  body: unknown,
  work: (write: MerchantWrite) => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed: boolean }> {
  const merchant = merchantOf(req);
  return store.run(`merchant:${merchant.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
    work({ merchant, actor: entry.actor, source: auditSource(req), claim }),
  );
}
