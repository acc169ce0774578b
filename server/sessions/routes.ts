import { Router } from 'express';
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { parseInput } from '../http/errors.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { FieldsSessions } from './service.ts';

const OpenSessionRequest = z.strictObject({
  key: z.string().min(1).max(128),
  parent_origin: z.string().min(1).max(255),
});

export function sessionRoutes(deps: {
  merchants: MerchantDirectory;
  sessions: FieldsSessions;
  limits: { perIp: RateLimiter; perKey: RateLimiter };
}): Router {
  const router = Router();
  router.post('/v1/sessions', async (req, res) => {
    deps.limits.perIp.hit(`ip:${req.ip}`);
    const body = parseInput(OpenSessionRequest, req.body);
    const merchant = await deps.merchants.byPublishableKey(body.key);
    if (merchant === undefined) throw new ApiError('unauthenticated', { param: 'key' });
    deps.limits.perKey.hit(`pk:${body.key}`);
    res.status(201).json(await deps.sessions.open(merchant, body.parent_origin));
  });
  return router;
}
