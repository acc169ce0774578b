import { Router } from 'express';
import { merchantOf, requireAdmin, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { CreateMerchantSchema, UpdateMerchantSchema } from './schema.ts';
import { merchantBody, type MerchantDirectory } from './service.ts';

export function merchantRoutes(deps: { merchants: MerchantDirectory; adminKey: string }): Router {
  const router = Router();

  router.post('/v1/merchants', requireAdmin(deps.adminKey), async (req, res) => {
    const input = parseInput(CreateMerchantSchema, req.body);
    const { merchant, secretKey } = await deps.merchants.create(input);
    req.log.info({ merchant_id: merchant.id }, 'merchant created');
    res.status(201).json({ ...merchantBody(merchant), secret_key: secretKey });
  });

  router.get('/v1/merchant', requireSecretKey(deps.merchants), (req, res) => {
    res.json(merchantBody(merchantOf(req)));
  });

  router.patch('/v1/merchant', requireSecretKey(deps.merchants), async (req, res) => {
    const changes = parseInput(UpdateMerchantSchema, req.body);
    res.json(merchantBody(await deps.merchants.update(merchantOf(req).id, changes)));
  });

  return router;
}
