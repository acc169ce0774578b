import { Router } from 'express';
import { z } from 'zod';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { requireAdmin } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { ADMIN_SCOPE, idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import { recordResponse, type IdempotencyStore, type StoredResponse } from '../idempotency/idempotency.ts';
import type { TransportKeyring } from './transport-keys.ts';

const RotateRequest = z.strictObject({
  grace_seconds: z.number().int().min(0).max(30 * 24 * 3600).optional(),
});

export function keyRoutes(deps: {
  keyring: TransportKeyring;
  adminKey: string;
  defaultGraceSeconds: number;
  idempotency: IdempotencyStore;
  audit: AuditLog;
}): Router {
  const router = Router();

  router.get('/v1/keys', async (_req, res) => {
    // Public keys: any page may read them; short caching so a rotation shows up quickly.
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'public, max-age=60' }).json(await deps.keyring.jwks());
  });

  router.post('/v1/keys/rotate', requireAdmin(deps.adminKey), async (req, res) => {
    const entry = auditing(req, { merchantId: null, action: 'key.rotated' });
    const body = parseInput(RotateRequest, req.body);
    const grace = body.grace_seconds ?? deps.defaultGraceSeconds;
    // A retry of a rotation whose answer was lost must not retire the key it published.
    const stored = await deps.idempotency.run(ADMIN_SCOPE, idempotencyKeyOf(req), idempotentRequest(req, body), async (claim) => {
      let response: StoredResponse | undefined;
      await deps.keyring.rotate(grace, async (tx, rotated) => {
        response = { status: 201, body: JSON.stringify({ kid: rotated.kid, retired: rotated.retired, grace_seconds: grace }) };
        await recordResponse(tx, claim, response);
        await deps.audit.record(entry, tx);
      });
      return response!;
    });
    sendStored(res, stored);
  });

  return router;
}
