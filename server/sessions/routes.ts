import { Router } from 'express';
import { z } from 'zod';
import { VaultError } from '../errors.ts';
import { freeText } from '../lib/free-text.ts';
import { clientIp, clientNetwork } from '../http/client-ip.ts';
import { parseInput } from '../http/errors.ts';
import { vaultOrigin } from '../http/vault-origin.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { FieldsSession, FieldsSessions } from './service.ts';

const OpenSessionRequest = z.strictObject({
  key: z.string().min(1).max(128, { abort: true }),
  // Stored with the session once it is an allowed origin; refused like any free text before that.
  parent_origin: freeText({ max: 255 }),
});

export function sessionRoutes(deps: {
  merchants: MerchantDirectory;
  sessions: FieldsSessions;
  idempotency: IdempotencyStore;
  limits: { perIp: RateLimiter; perKey: RateLimiter };
  publicOrigin: string | undefined;
}): Router {
  const router = Router();
  router.post('/v1/sessions', async (req, res) => {
    await deps.limits.perIp.hit(`ip:${clientNetwork(clientIp(req))}`);
    const body = parseInput(OpenSessionRequest, req.body);
    const merchant = await deps.merchants.byPublishableKey(body.key);
    if (merchant === undefined) throw new VaultError('unauthenticated', { param: 'key' });
    await deps.limits.perKey.hit(`pk:${body.key}`);
    const render = (session: FieldsSession) => ({ status: 201, body: JSON.stringify(session) });
    // Scoped like the card fields' tokens: per publishable key.
    const stored = await deps.idempotency.run(`pk:${body.key}`, idempotencyKeyOf(req), idempotentRequest(req, body), async (claim) =>
      render(await deps.sessions.open(merchant, body.parent_origin, claim === undefined ? undefined : { claim, render }, vaultOrigin(req, deps.publicOrigin))),
    );
    sendStored(res, stored);
  });
  return router;
}
