import { Router } from 'express';
import { z } from 'zod';
import { requireAdmin } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import type { TransportKeyring } from './transport-keys.ts';

const RotateRequest = z.strictObject({
  grace_seconds: z.number().int().min(0).max(30 * 24 * 3600).optional(),
});

export function keyRoutes(deps: { keyring: TransportKeyring; adminKey: string; defaultGraceSeconds: number }): Router {
  const router = Router();

  router.get('/v1/keys', async (_req, res) => {
    // Public keys: any page may read them; short caching so a rotation shows up quickly.
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'public, max-age=60' }).json(await deps.keyring.jwks());
  });

  router.post('/v1/keys/rotate', requireAdmin(deps.adminKey), async (req, res) => {
    const body = parseInput(RotateRequest, req.body);
    const grace = body.grace_seconds ?? deps.defaultGraceSeconds;
    const result = await deps.keyring.rotate(grace);
    res.status(201).json({ kid: result.kid, retired: result.retired, grace_seconds: grace });
  });

  return router;
}
