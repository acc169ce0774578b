import { Router } from 'express';
import { z } from 'zod';
import type { MerchantDirectory } from '../merchants/service.ts';
import { merchantOf, requireAdmin, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { freeText } from '../lib/free-text.ts';
import { auditEventBody, auditing, type AuditLog } from './audit.ts';
import { parseWitness, WITNESS_PATTERN, type ChainWitness } from './chain.ts';

const ObjectId = freeText({ max: 128, pattern: /^[A-Za-z0-9_-]+$/ });

const ListEventsQuery = z.strictObject({
  token: ObjectId.optional(),
  payment: ObjectId.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  starting_after: ObjectId.optional(),
});

const Witness = z.string().regex(WITNESS_PATTERN);
const VerifyQuery = z.strictObject({
  // `expect=<chain>:<seq>:<hash>`, repeated for several chains
  expect: z.union([Witness, z.array(Witness).max(1000)]).optional(),
});

/** `GET /v1/events`: the merchant's own audit log, newest first; `GET /v1/audit/verify`: the operator's check of every chain. */
export function auditRoutes(deps: { audit: AuditLog; merchants: MerchantDirectory; adminKey: string }): Router {
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

  router.get('/v1/audit/verify', requireAdmin(deps.adminKey), async (req, res) => {
    const entry = auditing(req, { merchantId: null, action: 'audit.verified' });
    const query = parseInput(VerifyQuery, req.query);
    const expected = query.expect === undefined ? [] : Array.isArray(query.expect) ? query.expect : [query.expect];
    const witnesses = expected.map((text) => parseWitness(text)).filter((w): w is ChainWitness => w !== undefined);
    const verification = await deps.audit.verify(witnesses);
    // Reading the log is itself recorded (PCI DSS 10.2.1.3), after the check so it is not part of what was checked.
    await deps.audit.record(verification.ok ? entry : { ...entry, outcome: 'failed', code: 'audit_chain_broken' });
    res.json({ object: 'audit_verification', ...verification });
  });

  return router;
}
