import type { Request } from 'express';

/**
 * The vault's public origin: `TESSERA_PUBLIC_URL`'s when set, else the
 * origin this request was made to. Payment links' URLs are made from it, and
 * the vault's own pages (the hosted payment page) may embed the card fields.
 */
export function vaultOrigin(req: Request, publicOrigin: string | undefined): string {
  return publicOrigin ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}
