import { Router, type Request } from 'express';
import { z } from 'zod';
import { auditing, type AuditAction, type AuditLog } from '../audit/audit.ts';
import { isEventPattern } from '../events/types.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import { recordResponse, type IdempotencyStore, type ResponseSeal, type StoredResponse } from '../idempotency/idempotency.ts';
import { freeText } from '../lib/free-text.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { Queryable } from '../storage/db.ts';
import type { WebhookDelivery, WebhookEndpoint, WebhookEndpoints } from './endpoints.ts';
import { assertWebhookUrlAllowed } from './resolve.ts';
import { webhookUrlSchema } from './url-policy.ts';

const Id = (prefix: string) => freeText({ max: 64, pattern: new RegExp(`^${prefix}_[A-Za-z0-9]+$`) });
const EventPatterns = z
  .array(freeText({ max: 64 }).refine(isEventPattern, 'must be an event type, a group such as payment.*, or *'))
  .min(1)
  .max(32);
const Page = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: freeText({ max: 64 }).optional(),
});

export function webhookRoutes(deps: {
  endpoints: WebhookEndpoints;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  responseSeal: ResponseSeal;
  allowLocal: boolean;
}): Router {
  const router = Router();
  router.use(['/v1/webhook-endpoints', '/v1/webhook-deliveries'], requireSecretKey(deps.merchants));
  const policy = { allowLocal: deps.allowLocal };
  const CreateEndpoint = z.strictObject({ url: webhookUrlSchema(policy), events: EventPatterns });
  const UpdateEndpoint = z.strictObject({ url: webhookUrlSchema(policy).optional(), events: EventPatterns.optional(), disabled: z.boolean().optional() });
  const endpointId = (req: Request) => parseInput(z.strictObject({ id: Id('we') }), { id: String(req.params['id']) }).id;

  /**
   * A write under the request's Idempotency-Key, its audit entry last in the
   * transaction; answers that carry a secret are stored sealed.
   */
  const write = async (
    req: Request,
    body: unknown,
    action: AuditAction,
    work: (done: (tx: Queryable, response: StoredResponse) => Promise<void>) => Promise<unknown>,
    sealed = false,
  ) => {
    const merchant = merchantOf(req);
    const entry = auditing(req, { merchantId: merchant.id, action });
    return deps.idempotency.run(
      `merchant:${merchant.id}`,
      idempotencyKeyOf(req),
      idempotentRequest(req, body),
      async (claim) => {
        let answer: StoredResponse | undefined;
        await work(async (tx, response) => {
          answer = response;
          await recordResponse(tx, claim, response);
          await deps.audit.record(entry, tx);
        });
        return answer!;
      },
      sealed ? { seal: deps.responseSeal } : {},
    );
  };

  router.post('/v1/webhook-endpoints', async (req, res) => {
    const body = parseInput(CreateEndpoint, req.body);
    // Resolved now as well as at every delivery: a name that points inside is refused at once.
    const url = await assertWebhookUrlAllowed(body.url, policy);
    const stored = await write(
      req,
      body,
      'webhook_endpoint.created',
      (done) =>
        deps.endpoints.create(merchantOf(req).id, { url, events: body.events }, (tx, created) =>
          done(tx, { status: 201, body: JSON.stringify({ ...endpointBody(created.endpoint), secret: created.secret }) }),
        ),
      true,
    );
    sendStored(res, stored);
  });

  router.get('/v1/webhook-endpoints', async (req, res) => {
    const query = parseInput(Page, req.query);
    const page = await deps.endpoints.list(merchantOf(req).id, { limit: query.limit, startingAfter: query.starting_after });
    res.json({ object: 'list', data: page.rows.map(endpointBody), has_more: page.hasMore });
  });

  router.get('/v1/webhook-endpoints/:id', async (req, res) => {
    res.json(endpointBody(await deps.endpoints.get(merchantOf(req).id, endpointId(req))));
  });

  router.patch('/v1/webhook-endpoints/:id', async (req, res) => {
    const body = parseInput(UpdateEndpoint, req.body);
    const url = body.url === undefined ? undefined : await assertWebhookUrlAllowed(body.url, policy);
    const stored = await write(req, body, 'webhook_endpoint.updated', (done) =>
      deps.endpoints.update(merchantOf(req).id, endpointId(req), { ...body, url }, (tx, endpoint) =>
        done(tx, { status: 200, body: JSON.stringify(endpointBody(endpoint)) }),
      ),
    );
    sendStored(res, stored);
  });

  router.delete('/v1/webhook-endpoints/:id', async (req, res) => {
    const id = endpointId(req);
    const stored = await write(req, {}, 'webhook_endpoint.deleted', (done) =>
      deps.endpoints.delete(merchantOf(req).id, id, (tx) => done(tx, { status: 200, body: JSON.stringify({ id, object: 'webhook_endpoint', deleted: true }) })),
    );
    sendStored(res, stored);
  });

  router.post('/v1/webhook-endpoints/:id/rotate-secret', async (req, res) => {
    const body = parseInput(z.strictObject({}), req.body ?? {});
    const stored = await write(
      req,
      body,
      'webhook_endpoint.secret_rotated',
      (done) =>
        deps.endpoints.rotateSecret(merchantOf(req).id, endpointId(req), (tx, rotated) =>
          done(tx, { status: 200, body: JSON.stringify({ ...endpointBody(rotated.endpoint), secret: rotated.secret }) }),
        ),
      true,
    );
    sendStored(res, stored);
  });

  router.get('/v1/webhook-endpoints/:id/deliveries', async (req, res) => {
    const query = parseInput(Page, req.query);
    const page = await deps.endpoints.deliveries(merchantOf(req).id, endpointId(req), { limit: query.limit, startingAfter: query.starting_after });
    res.json({ object: 'list', data: page.rows.map(deliveryBody), has_more: page.hasMore });
  });

  router.post('/v1/webhook-deliveries/:id/retry', async (req, res) => {
    const id = parseInput(z.strictObject({ id: Id('whd') }), { id: String(req.params['id']) }).id;
    const body = parseInput(z.strictObject({}), req.body ?? {});
    const stored = await write(req, body, 'webhook_delivery.retried', (done) =>
      deps.endpoints.retry(merchantOf(req).id, id, (tx) => done(tx, { status: 202, body: JSON.stringify({ id, object: 'webhook_delivery', state: 'pending' }) })),
    );
    sendStored(res, stored);
  });

  return router;
}

export function endpointBody(endpoint: WebhookEndpoint) {
  return {
    id: endpoint.id,
    object: 'webhook_endpoint',
    url: endpoint.url,
    events: endpoint.events,
    disabled: endpoint.disabled,
    disabled_reason: endpoint.disabled_reason,
    created_at: endpoint.created_at.toISOString(),
    updated_at: endpoint.updated_at.toISOString(),
  };
}

export function deliveryBody(delivery: WebhookDelivery) {
  return {
    id: delivery.id,
    object: 'webhook_delivery',
    endpoint: delivery.endpoint_id,
    event: delivery.event_id,
    event_type: delivery.event_type,
    state: delivery.state,
    attempts: delivery.attempt_log.map((a) => ({
      attempt: a.attempt,
      attempted_at: new Date(a.attempted_at).toISOString(),
      status_code: a.status_code,
      latency_ms: a.latency_ms,
      error: a.error,
    })),
    next_attempt_at: delivery.next_attempt_at === null ? null : delivery.next_attempt_at.toISOString(),
    created_at: delivery.created_at.toISOString(),
  };
}
