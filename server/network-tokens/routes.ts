import { Router, type Request } from 'express';
import { auditing } from '../audit/audit.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { runForMerchant, sendStored } from '../http/idempotent.ts';
import type { RequestsInFlight } from '../http/in-flight.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import { echoableTokenName, TokenPath } from '../tokens/schema.ts';
import { LifecycleRequest, NetworkTokenPath, NetworkTokenRequest } from './schema.ts';
import type { NetworkTokens } from './service.ts';

/** `POST /v1/tokens/{token}/network-token` and the sandbox's issuer-side lifecycle (api.md), with the secret key. */
export function networkTokenRoutes(deps: {
  networkTokens: NetworkTokens;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
  /** This process's requests in flight: a sync request steps aside of them while it waits for provisioning. */
  requestsInFlight?: RequestsInFlight | undefined;
}): Router {
  const router = Router();
  const secret = requireSecretKey(deps.merchants);

  router.post('/v1/tokens/:token/network-token', secret, async (req, res) => {
    const merchant = merchantOf(req);
    const { token } = parseInput(TokenPath, { token: String(req.params['token']) });
    const entry = auditing(req, { merchantId: merchant.id, action: 'network_token.requested', token: echoableTokenName(token) ?? undefined });
    const body = parseInput(NetworkTokenRequest, req.body ?? {});
    // On PGlite provisioning's statements wait for the requests in flight first (vault.ts): not for this one.
    if (body.mode === 'sync') deps.requestsInFlight?.aside(res);
    const stored = await runForMerchant(deps.idempotency, req, entry, body, (write) =>
      deps.networkTokens.request(merchant, token, body, write),
    );
    sendStored(res, stored);
  });

  router.post('/v1/sandbox/network-tokens/:id/lifecycle', secret, async (req: Request, res) => {
    const merchant = merchantOf(req);
    const { id } = parseInput(NetworkTokenPath, { id: String(req.params['id']) });
    const entry = auditing(req, { merchantId: merchant.id, action: 'network_token.updated' });
    const body = parseInput(LifecycleRequest, req.body);
    const stored = await runForMerchant(deps.idempotency, req, entry, body, (write) =>
      deps.networkTokens.lifecycle(merchant, id, body, write),
    );
    sendStored(res, stored);
  });

  return router;
}
