import { Router } from 'express';
import { z } from 'zod';
import type { MerchantDirectory } from '../merchants/service.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { freeText } from '../lib/free-text.ts';
import { auditEventBody, type AuditLog } from './audit.ts';

const ObjectId = freeText({ max: 128, pattern: /^[A-Za-z0-9_-]+$/ });

const ListEventsQuery = z.strictObject({
  token: ObjectId.optional(),
  payment: ObjectId.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  starting_after: ObjectId.optional(),
});

/** `GET /v1/events`: the merchant's own audit log, newest first. */
export function auditRoutes(deps: { audit: AuditLog; merchants: MerchantDirectory }): Router {
  const router = Router();

  router.get('/v1/events', requireSecretKey(deps.merchants), async (req, res) => {
    const query = parseInput(ListEventsQuery, req.query);
    const page = await deps.audit.list(merchantOf(req).id, {
      limit: query.limit,
      startingAfter: query.starting_after,
      token: query.token,
      paymentId: query.payment,
    });
    res.json({ object: 'list', data: page.events.map(auditEventBody), has_more: page.hasMore });
  });

  return router;
}
