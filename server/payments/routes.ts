import { Router, type Request } from 'express';
import { auditing, type AuditAction } from '../audit/audit.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { runForMerchant, sendStored } from '../http/idempotent.ts';
import { AmountRequest, CreatePaymentRequest, ListPaymentsQuery, PaymentPath, VoidRequest } from './schema.ts';
import { paymentBody } from './serialize.ts';
import type { PaymentService } from './service.ts';

export interface PaymentRouteDeps {
  payments: PaymentService;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
}

/** Payments on tokens: create, capture, void, refund, and status checks (secret key only). */
export function paymentRoutes(deps: PaymentRouteDeps): Router {
  const router = Router();
  router.use('/v1/payments', requireSecretKey(deps.merchants));

  // A card number in the path is refused like in any other parameter, before the audit log could record it.
  const paymentId = (req: Request) => parseInput(PaymentPath, { id: String(req.params['id']) }).id;
  const audited = (req: Request, action: AuditAction, ids: { token?: string; paymentId?: string }) =>
    auditing(req, { merchantId: merchantOf(req).id, action, ...ids });

  router.post('/v1/payments', async (req, res) => {
    const body = parseInput(CreatePaymentRequest, req.body);
    const entry = audited(req, 'payment.authorized', { token: body.token });
    sendStored(res, await runForMerchant(deps.idempotency, req, entry, body, (ctx) => deps.payments.create(body, ctx)));
  });

  router.get('/v1/payments', async (req, res) => {
    const query = parseInput(ListPaymentsQuery, req.query);
    const page = await deps.payments.list(merchantOf(req).id, {
      reference: query.reference,
      token: query.token,
      subscription: query.subscription,
      limit: query.limit,
      startingAfter: query.starting_after,
    });
    res.json({ object: 'list', data: page.payments.map(paymentBody), has_more: page.hasMore });
  });

  router.get('/v1/payments/:id', async (req, res) => {
    res.json(paymentBody(await deps.payments.get(merchantOf(req).id, paymentId(req))));
  });

  router.post('/v1/payments/:id/capture', async (req, res) => {
    const id = paymentId(req);
    const body = parseInput(AmountRequest, req.body ?? {});
    const entry = audited(req, 'payment.captured', { paymentId: id });
    sendStored(res, await runForMerchant(deps.idempotency, req, entry, body, (ctx) => deps.payments.capture(id, body.amount, ctx)));
  });

  router.post('/v1/payments/:id/void', async (req, res) => {
    const id = paymentId(req);
    const body = parseInput(VoidRequest, req.body ?? {});
    const entry = audited(req, 'payment.voided', { paymentId: id });
    sendStored(res, await runForMerchant(deps.idempotency, req, entry, body, (ctx) => deps.payments.void(id, ctx)));
  });

  router.post('/v1/payments/:id/refunds', async (req, res) => {
    const id = paymentId(req);
    const body = parseInput(AmountRequest, req.body ?? {});
    const entry = audited(req, 'payment.refunded', { paymentId: id });
    sendStored(res, await runForMerchant(deps.idempotency, req, entry, body, (ctx) => deps.payments.refund(id, body.amount, ctx)));
  });

  return router;
}
