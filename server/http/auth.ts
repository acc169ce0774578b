import type { NextFunction, Request, Response } from 'express';
import { redactKey } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { isPublishableKey, secretsEqual, type Merchant, type MerchantDirectory } from '../merchants/service.ts';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by `requireSecretKey`: the merchant the secret key belongs to. */
    merchant?: Merchant;
  }
}

/** The key in `Authorization: Bearer <key>`, if any. */
export function bearerKey(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) throw new VaultError('unauthenticated', { message: 'The Authorization header must be "Bearer <key>".' });
  return match[1];
}

export function requireAdmin(adminKey: string) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const key = bearerKey(req);
    if (key === undefined || !secretsEqual(key, adminKey)) throw new VaultError('unauthenticated');
    req.actor = 'admin';
    next();
  };
}

/** Resolves the merchant from a secret key; a publishable key here is 403, anything else 401. */
export async function merchantFromSecretKey(req: Request, merchants: MerchantDirectory): Promise<Merchant> {
  const key = bearerKey(req);
  if (key === undefined) throw new VaultError('unauthenticated');
  if (isPublishableKey(key)) {
    if ((await merchants.byPublishableKey(key)) === undefined) throw new VaultError('unauthenticated');
    // A known key in the wrong place. Anyone can hold a publishable key, so its
    // failure goes to the operator's log, naming the (public) key, not to its merchant's.
    req.actor = key;
    throw new VaultError('secret_key_required');
  }
  const merchant = await merchants.bySecretKey(key);
  if (merchant === undefined) throw new VaultError('unauthenticated');
  req.actor = redactKey(key);
  return merchant;
}

export function requireSecretKey(merchants: MerchantDirectory) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    req.merchant = await merchantFromSecretKey(req, merchants);
    next();
  };
}

/** The merchant set by `requireSecretKey`. */
export function merchantOf(req: Request): Merchant {
  if (req.merchant === undefined) throw new Error('requireSecretKey must run before this handler');
  return req.merchant;
}
