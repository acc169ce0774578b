import { Router, type Request } from 'express';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { runForMerchant, sendStored } from '../http/idempotent.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { parsePaymentBatchCsv } from './csv.ts';
import { BatchEnvelope, BatchResultsQuery, batchPath } from '../batches/schema.ts';
import { PaymentBatchRequest, type PaymentBatchInput } from './schema.ts';
import { paymentBatchBody, paymentBatchResultBody } from './serialize.ts';
import type { PaymentBatches } from './service.ts';

/** `POST /v1/payment-batches` (JSON or `text/csv`) and its reads, all with the secret key. */
export function paymentBatchRoutes(deps: { batches: PaymentBatches; merchants: MerchantDirectory; idempotency: IdempotencyStore; audit: AuditLog }): Router {
  const router = Router();
  router.use('/v1/payment-batches', requireSecretKey(deps.merchants));
  const path = batchPath('pbat');
  const batchId = (req: Request) => parseInput(path, { id: String(req.params['id']) }).id;

  router.post('/v1/payment-batches', async (req, res) => {
    const merchant = merchantOf(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'payment_batch.created' });
    let body: PaymentBatchInput;
    if (typeof req.body === 'string') {
      body = parsePaymentBatchCsv(req.body);
    } else {
      // Validated whole before it is accepted: the count first, then every item.
      parseInput(BatchEnvelope, req.body);
      body = parseInput(PaymentBatchRequest, req.body);
    }
    const stored = await runForMerchant(deps.idempotency, req, entry, body, (write) =>
      deps.batches.create(merchant, body, write),
    );
    sendStored(res, stored);
  });

  router.get('/v1/payment-batches/:id', async (req, res) => {
    res.json(paymentBatchBody(await deps.batches.get(merchantOf(req).id, batchId(req))));
  });

  router.get('/v1/payment-batches/:id/results', async (req, res) => {
    const merchant = merchantOf(req);
    const id = batchId(req);
    const query = parseInput(BatchResultsQuery, req.query);
    const page = await deps.batches.results(merchant.id, id, { limit: query.limit, startingAfter: query.starting_after });
    res.json({ object: 'list', data: page.results.map(paymentBatchResultBody), has_more: page.hasMore });
  });

  return router;
}
