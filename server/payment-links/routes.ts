import { Router, type Request } from 'express';
import { auditing, auditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { clientIp, clientNetwork } from '../http/client-ip.ts';
import { parseInput } from '../http/errors.ts';
import { vaultOrigin } from '../http/vault-origin.ts';
import { idempotencyKeyOf, idempotentRequest, runForMerchant, sendStored } from '../http/idempotent.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { CreatePaymentLinkRequest, ExpirePaymentLinkRequest, ListPaymentLinksQuery, PayLinkRequest, PaymentLinkPath } from './schema.ts';
import { paymentLinkBody } from './serialize.ts';
import { SHOPPER_ACTOR, type PaymentLinks } from './service.ts';

const linkId = (req: Request) => parseInput(PaymentLinkPath, { id: String(req.params['id']) }).id;

/** `/v1/payment-links` (api.md, "Payment links and batch payment operations"), all with the secret key. */
export function paymentLinkRoutes(deps: {
  links: PaymentLinks;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
  publicOrigin: string | undefined;
}): Router {
  const router = Router();
  router.use('/v1/payment-links', requireSecretKey(deps.merchants));

  router.post('/v1/payment-links', async (req, res) => {
    const merchant = merchantOf(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'payment_link.created' });
    const body = parseInput(CreatePaymentLinkRequest, req.body);
    const origin = vaultOrigin(req, deps.publicOrigin);
    const stored = await runForMerchant(deps.idempotency, req, entry, body, (write) =>
      deps.links.create(merchant, body, origin, write),
    );
    sendStored(res, stored);
  });

  router.get('/v1/payment-links', async (req, res) => {
    const query = parseInput(ListPaymentLinksQuery, req.query);
    const page = await deps.links.list(merchantOf(req).id, { status: query.status, limit: query.limit, startingAfter: query.starting_after });
    res.json({ object: 'list', data: page.links.map((link) => paymentLinkBody(link)), has_more: page.hasMore });
  });

  router.get('/v1/payment-links/:id', async (req, res) => {
    res.json(paymentLinkBody(await deps.links.get(merchantOf(req).id, linkId(req))));
  });

  router.post('/v1/payment-links/:id/expire', async (req, res) => {
    const merchant = merchantOf(req);
    const id = linkId(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'payment_link.expired' });
    const body = parseInput(ExpirePaymentLinkRequest, req.body ?? {});
    const stored = await runForMerchant(deps.idempotency, req, entry, body, (write) =>
      deps.links.expire(merchant, id, write),
    );
    sendStored(res, stored);
  });

  return router;
}

/**
 * `POST /pay/plink_…/payments`: the hosted page pays its link with the
 * single-use token its card fields made. No key: the link's id is its
 * secret, and the token must be a card-fields token of the link's merchant.
 * Card-testing brakes apply as to any payment (per-IP rate, declines per
 * card, session and client), and each shopper's Pay carries an
 * Idempotency-Key, scoped to the link.
 */
export function payLinkRoutes(deps: {
  links: PaymentLinks;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
  limits: { perIp: RateLimiter };
}): Router {
  const router = Router();
  router.post('/pay/:id/payments', async (req, res) => {
    deps.limits.perIp.hit(`ip:${clientNetwork(clientIp(req))}`);
    const id = linkId(req);
    const body = parseInput(PayLinkRequest, req.body);
    const link = await deps.links.find(id);
    const merchant = link === undefined ? undefined : await deps.merchants.byId(link.merchant_id);
    if (link === undefined || merchant === undefined) throw new VaultError('payment_link_not_found', { param: 'id' });
    req.actor = SHOPPER_ACTOR;
    auditing(req, { merchantId: merchant.id, action: 'payment.authorized', token: body.token });
    const stored = await deps.idempotency.run(`plink:${link.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
      deps.links.pay(link, merchant, body.token, { claim, actor: SHOPPER_ACTOR, source: auditSource(req) }),
    );
    sendStored(res, stored);
  });
  return router;
}
