import { Router, type Request } from 'express';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { runForMerchant, sendStored } from '../http/idempotent.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { BatchEnvelope, BatchResultsQuery, batchPath } from '../batches/schema.ts';
import { TokenBatchRequest } from './schema.ts';
import { tokenBatchBody, tokenBatchResultBody } from './serialize.ts';
import type { TokenBatches } from './service.ts';

/** `POST /v1/token-batches` and its reads (api.md, "Async batch tokenization"), all with the secret key. */
export function tokenBatchRoutes(deps: { batches: TokenBatches; merchants: MerchantDirectory; idempotency: IdempotencyStore; audit: AuditLog }): Router {
  const router = Router();
  router.use('/v1/token-batches', requireSecretKey(deps.merchants));
  const path = batchPath('tbat');
  const batchId = (req: Request) => parseInput(path, { id: String(req.params['id']) }).id;

  router.post('/v1/token-batches', async (req, res) => {
    const merchant = merchantOf(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'token_batch.created' });
    // Validated whole before it is accepted: the count first, then every item.
    parseInput(BatchEnvelope, req.body);
    const body = parseInput(TokenBatchRequest, req.body);
    const stored = await runForMerchant(deps.idempotency, req, entry, body, (write) =>
      deps.batches.create(merchant, body, write),
    );
    sendStored(res, stored);
  });

  router.get('/v1/token-batches/:id', async (req, res) => {
    res.json(tokenBatchBody(await deps.batches.get(merchantOf(req).id, batchId(req))));
  });

  router.get('/v1/token-batches/:id/results', async (req, res) => {
    const merchant = merchantOf(req);
    const id = batchId(req);
    const query = parseInput(BatchResultsQuery, req.query);
    // Results name tokens, like a token list: their reads are recorded.
    const entry = auditing(req, { merchantId: merchant.id, action: 'token_batch.read' });
    const page = await deps.batches.results(merchant.id, id, { limit: query.limit, startingAfter: query.starting_after });
    await deps.audit.record(entry);
    res.json({ object: 'list', data: page.results.map(tokenBatchResultBody), has_more: page.hasMore });
  });

  return router;
}
