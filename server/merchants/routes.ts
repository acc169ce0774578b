import { Router } from 'express';
import { z } from 'zod';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { ApiError } from '../errors.ts';
import { merchantOf, requireAdmin, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { ADMIN_SCOPE, idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import { recordResponse, type IdempotencyStore, type ResponseSeal, type StoredResponse } from '../idempotency/idempotency.ts';
import { CreateMerchantSchema, UpdateMerchantSchema } from './schema.ts';
import { merchantBody, type MerchantDirectory } from './service.ts';

const ListMerchantsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: z.string().regex(/^mer_[0-9A-Za-z]{1,64}$/).optional(),
});

export function merchantRoutes(deps: {
  merchants: MerchantDirectory;
  adminKey: string;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  /** Seals the stored response of a merchant creation, which carries the secret key. */
  responseSeal: ResponseSeal;
}): Router {
  const router = Router();

  router.post('/v1/merchants', requireAdmin(deps.adminKey), async (req, res) => {
    const entry = auditing(req, { merchantId: null, action: 'merchant.created' });
    const input = parseInput(CreateMerchantSchema, req.body);
    const stored = await deps.idempotency.run(
      ADMIN_SCOPE,
      idempotencyKeyOf(req),
      idempotentRequest(req, input),
      async (claim) => {
        let response: StoredResponse | undefined;
        const { merchant } = await deps.merchants.create(input, async (tx, { merchant, secretKey }) => {
          response = { status: 201, body: JSON.stringify({ ...merchantBody(merchant), secret_key: secretKey }) };
          await recordResponse(tx, claim, response);
          await deps.audit.record({ ...entry, merchantId: merchant.id }, tx);
        });
        req.log.info({ merchant_id: merchant.id }, 'merchant created');
        return response!;
      },
      { seal: deps.responseSeal },
    );
    sendStored(res, stored);
  });

  router.get('/v1/merchants', requireAdmin(deps.adminKey), async (req, res) => {
    const query = parseInput(ListMerchantsQuery, req.query);
    const page = await deps.merchants.list({ limit: query.limit, startingAfter: query.starting_after });
    if (page === undefined) throw new ApiError('parameter_invalid', { message: 'No merchant has the id given in starting_after.', param: 'starting_after' });
    res.json({ object: 'list', data: page.merchants.map(merchantBody), has_more: page.hasMore });
  });

  router.get('/v1/merchant', requireSecretKey(deps.merchants), async (req, res) => {
    const merchant = merchantOf(req);
    await deps.audit.record(auditing(req, { merchantId: merchant.id, action: 'merchant.read' }));
    res.json(merchantBody(merchant));
  });

  router.patch('/v1/merchant', requireSecretKey(deps.merchants), async (req, res) => {
    const merchantId = merchantOf(req).id;
    const entry = auditing(req, { merchantId, action: 'merchant.updated' });
    const changes = parseInput(UpdateMerchantSchema, req.body);
    const stored = await deps.idempotency.run(`merchant:${merchantId}`, idempotencyKeyOf(req), idempotentRequest(req, changes), async (claim) => {
      let response: StoredResponse | undefined;
      await deps.merchants.update(merchantId, changes, async (tx, merchant) => {
        response = { status: 200, body: JSON.stringify(merchantBody(merchant)) };
        await recordResponse(tx, claim, response);
        await deps.audit.record(entry, tx);
      });
      return response!;
    });
    sendStored(res, stored);
  });

  return router;
}
