import { Router, type Request } from 'express';
import { ApiError } from '../errors.ts';
import { bearerKey, merchantFromSecretKey, merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { FieldsSessions } from '../sessions/service.ts';
import { FieldsTokenRequest, ListTokensQuery, ServerTokenRequest } from './schema.ts';
import { browserTokenBody, createdTokenBody, tokenBody } from './serialize.ts';
import type { TokenVault } from './service.ts';

// Other routes import it from here.
export { sendStored } from '../http/idempotent.ts';

export interface TokenRouteDeps {
  tokens: TokenVault;
  merchants: MerchantDirectory;
  sessions: FieldsSessions;
  idempotency: IdempotencyStore;
  limits: { perIp: RateLimiter; perKey: RateLimiter };
}

export function tokenRoutes(deps: TokenRouteDeps): Router {
  const router = Router();

  router.post('/v1/tokens', async (req, res) => {
    // The card fields send the publishable key in the body; a merchant server authenticates with its secret key.
    const stored = bearerKey(req) === undefined ? await createFromFields(deps, req) : await createFromServer(deps, req);
    sendStored(res, stored);
  });

  router.get('/v1/tokens', requireSecretKey(deps.merchants), async (req, res) => {
    const query = parseInput(ListTokensQuery, req.query);
    const page = await deps.tokens.list(merchantOf(req).id, {
      customer: query.customer,
      fingerprint: query.fingerprint,
      limit: query.limit,
      startingAfter: query.starting_after,
    });
    res.json({ object: 'list', data: page.tokens.map(tokenBody), has_more: page.hasMore });
  });

  router.get('/v1/tokens/:token', requireSecretKey(deps.merchants), async (req, res) => {
    res.json(tokenBody(await deps.tokens.get(merchantOf(req).id, String(req.params['token']))));
  });

  router.delete('/v1/tokens/:token', requireSecretKey(deps.merchants), async (req, res) => {
    const token = String(req.params['token']);
    await deps.tokens.delete(merchantOf(req).id, token);
    res.json({ token, deleted: true });
  });

  return router;
}

async function createFromFields(deps: TokenRouteDeps, req: Request) {
  deps.limits.perIp.hit(`ip:${req.ip}`);
  const body = parseInput(FieldsTokenRequest, req.body);
  const merchant = await deps.merchants.byPublishableKey(body.key);
  if (merchant === undefined) throw new ApiError('unauthenticated', { param: 'key' });
  deps.limits.perKey.hit(`pk:${body.key}`);
  // Fail fast before decrypting; the write counts the token against the session atomically.
  await deps.sessions.check(body.session, body.key);

  return deps.idempotency.run(`pk:${body.key}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
    deps.tokens.create(
      { merchant, ciphertext: body.card, reusable: body.reusable, customer: body.customer },
      {
        session: { id: body.session, publishableKey: body.key },
        claim,
        render: (outcome) => ({ status: 201, body: JSON.stringify(browserTokenBody(outcome.token)) }),
      },
    ),
  );
}

async function createFromServer(deps: TokenRouteDeps, req: Request) {
  const merchant = await merchantFromSecretKey(req, deps.merchants);
  const body = parseInput(ServerTokenRequest, req.body);
  return deps.idempotency.run(`merchant:${merchant.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
    deps.tokens.create(
      {
        merchant,
        ciphertext: body.card,
        reusable: body.reusable,
        customer: body.customer,
        value: body.value,
        declineDuplicates: body.decline_duplicates,
        verify: body.verify,
      },
      {
        claim,
        render: (outcome) => ({ status: outcome.existing ? 200 : 201, body: JSON.stringify(createdTokenBody(outcome)) }),
      },
    ),
  );
}
