import { Router, type Request } from 'express';
import { auditing, type AuditAction } from '../audit/audit.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { runForMerchant, sendStored } from '../http/idempotent.ts';
import type { IdempotencyStore, StoredResponse } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { CancelSubscriptionRequest, CreateSubscriptionRequest, ListSubscriptionsQuery, SubscriptionPath } from './schema.ts';
import { subscriptionBody } from './serialize.ts';
import type { SubscriptionContext, SubscriptionService } from './service.ts';

export interface SubscriptionRouteDeps {
  subscriptions: SubscriptionService;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
}

/** Subscriptions: create, read, list, cancel (secret key only). */
export function subscriptionRoutes(deps: SubscriptionRouteDeps): Router {
  const router = Router();
  router.use('/v1/subscriptions', requireSecretKey(deps.merchants));

  const idempotent = (req: Request, body: unknown, action: AuditAction, work: (ctx: SubscriptionContext) => Promise<StoredResponse>) =>
    runForMerchant(deps.idempotency, req, auditing(req, { merchantId: merchantOf(req).id, action }), body, work);
  // A card number in the path is refused like in any other parameter.
  const subscriptionId = (req: Request) => parseInput(SubscriptionPath, { id: String(req.params['id']) }).id;

  router.post('/v1/subscriptions', async (req, res) => {
    const body = parseInput(CreateSubscriptionRequest, req.body);
    sendStored(res, await idempotent(req, body, 'subscription.created', (ctx) => deps.subscriptions.create(body, ctx)));
  });

  router.get('/v1/subscriptions', async (req, res) => {
    const query = parseInput(ListSubscriptionsQuery, req.query);
    const page = await deps.subscriptions.list(merchantOf(req).id, {
      customer: query.customer,
      token: query.token,
      status: query.status,
      limit: query.limit,
      startingAfter: query.starting_after,
    });
    res.json({ object: 'list', data: page.subscriptions.map(subscriptionBody), has_more: page.hasMore });
  });

  router.get('/v1/subscriptions/:id', async (req, res) => {
    res.json(subscriptionBody(await deps.subscriptions.get(merchantOf(req).id, subscriptionId(req))));
  });

  router.post('/v1/subscriptions/:id/cancel', async (req, res) => {
    const id = subscriptionId(req);
    const body = parseInput(CancelSubscriptionRequest, req.body ?? {});
    sendStored(res, await idempotent(req, body, 'subscription.canceled', (ctx) => deps.subscriptions.cancel(id, ctx)));
  });

  return router;
}
