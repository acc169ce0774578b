import { Router, type Request } from 'express';
import { TOKEN_RESULT_HEADER } from '../../widget/shared/constants.ts';
import { auditing, auditSource, redactKey, type AuditLog } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { clientIp, clientNetwork } from '../http/client-ip.ts';
import { bearerKey, merchantFromSecretKey, merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput, toVaultError } from '../http/errors.ts';
import { idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { IdempotencyStore } from '../idempotency/idempotency.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import {
  BulkUpdateItem,
  BulkUpdateRequest,
  echoableTokenName,
  FieldsKey,
  FieldsTokenRequest,
  ListTokensQuery,
  ServerTokenRequest,
  TokenPath,
  VerifyTokenRequest,
} from './schema.ts';
import { browserTokenBody, bulkUpdateBody, createdTokenBody, tokenBody } from './serialize.ts';
import type { BulkItem } from './bulk-update.ts';
import type { TokenVault } from './service.ts';
import type { NetworkTokens } from '../network-tokens/service.ts';

// Other routes import it from here.
export { sendStored } from '../http/idempotent.ts';

export interface TokenRouteDeps {
  tokens: TokenVault;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  limits: { perIp: RateLimiter; perKey: RateLimiter };
  networkTokens: NetworkTokens;
}

/** Only printable ASCII may go in a header as it is (the fields' answer always is: a token name, a brand, digits). */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

export function tokenRoutes(deps: TokenRouteDeps): Router {
  const router = Router();

  router.post('/v1/tokens', async (req, res) => {
    // The card fields send the publishable key in the body; a merchant server authenticates with its secret key.
    if (bearerKey(req) !== undefined) return sendStored(res, await createFromServer(deps, req));
    const stored = await createFromFields(deps, req);
    // The answer again in a header, for the fields to read without waiting on the body (TOKEN_RESULT_HEADER).
    if (stored.status === 201 && PRINTABLE_ASCII.test(stored.body)) res.setHeader(TOKEN_RESULT_HEADER, stored.body);
    sendStored(res, stored);
  });

  router.patch('/v1/tokens', requireSecretKey(deps.merchants), async (req, res) => {
    const merchant = merchantOf(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'token.updated' });
    const body = parseInput(BulkUpdateRequest, req.body);
    const items = body.tokens.map(parseBulkItem);
    const stored = await deps.idempotency.run(`merchant:${merchant.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
      deps.tokens.updateMany(merchant, items, {
        claim,
        actor: entry.actor,
        source: auditSource(req),
        render: (outcomes) => ({ status: 200, body: JSON.stringify(bulkUpdateBody(outcomes)) }),
      }),
    );
    sendStored(res, stored);
  });

  router.get('/v1/tokens', requireSecretKey(deps.merchants), async (req, res) => {
    const merchant = merchantOf(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'token.listed' });
    const query = parseInput(ListTokensQuery, req.query);
    const page = await deps.tokens.list(merchant.id, {
      customer: query.customer,
      fingerprint: query.fingerprint,
      limit: query.limit,
      startingAfter: query.starting_after,
    });
    const networkTokens = await deps.networkTokens.newestFor(merchant.id, page.tokens.map((t) => t.token));
    await deps.audit.record(entry);
    res.json({ object: 'list', data: page.tokens.map((t) => tokenBody(t, networkTokens.get(t.token) ?? null)), has_more: page.hasMore });
  });

  router.get('/v1/tokens/:token', requireSecretKey(deps.merchants), async (req, res) => {
    const merchant = merchantOf(req);
    const token = tokenInPath(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'token.read', token: echoableTokenName(token) ?? undefined });
    const record = await deps.tokens.get(merchant.id, token);
    const networkToken = (await deps.networkTokens.newestFor(merchant.id, [record.token])).get(record.token) ?? null;
    await deps.audit.record(entry);
    res.json(tokenBody(record, networkToken));
  });

  // Not in the v1 contract: account verification of a token the card fields made (see TokenVault.verify).
  router.post('/v1/tokens/:token/verify', requireSecretKey(deps.merchants), async (req, res) => {
    const merchant = merchantOf(req);
    const token = tokenInPath(req);
    const body = parseInput(VerifyTokenRequest, req.body ?? {});
    auditing(req, { merchantId: merchant.id, action: 'token.verified', token: echoableTokenName(token) ?? undefined });
    sendStored(
      res,
      await deps.idempotency.run(`merchant:${merchant.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
        deps.tokens.verify(merchant, token, { actor: req.actor ?? 'unknown', source: auditSource(req), claim }),
      ),
    );
  });

  router.delete('/v1/tokens/:token', requireSecretKey(deps.merchants), async (req, res) => {
    const merchant = merchantOf(req);
    const token = tokenInPath(req);
    const entry = auditing(req, { merchantId: merchant.id, action: 'token.deleted', token: echoableTokenName(token) ?? undefined });
    await deps.tokens.delete(merchant.id, token, entry.actor, auditSource(req));
    res.json({ token, deleted: true });
  });

  return router;
}

/** The token named in the path: a card number there is refused like in any other parameter. */
const tokenInPath = (req: Request): string => parseInput(TokenPath, { token: String(req.params['token']) }).token;

/** One item of a bulk update, checked on its own: a malformed item is that item's error, not the request's. */
function parseBulkItem(raw: unknown): BulkItem {
  try {
    const item = parseInput(BulkUpdateItem, raw);
    return { update: { token: item.token, reusable: item.reusable, declineDuplicates: item.decline_duplicates, ciphertext: item.card } };
  } catch (error) {
    const token = raw !== null && typeof raw === 'object' ? echoableTokenName((raw as Record<string, unknown>)['token']) : null;
    return { token, error: toVaultError(error) };
  }
}

async function createFromFields(deps: TokenRouteDeps, req: Request) {
  await deps.limits.perIp.hit(`ip:${clientNetwork(clientIp(req))}`);
  // The key first, and alone: an anonymous request is turned away before any of its other fields is looked at.
  const { key } = parseInput(FieldsKey, req.body);
  const merchant = await deps.merchants.byPublishableKey(key);
  if (merchant === undefined) throw new VaultError('unauthenticated', { param: 'key' });
  await deps.limits.perKey.hit(`pk:${key}`);
  const body = parseInput(FieldsTokenRequest, req.body);
  if (body.moto && body.reusable) {
    throw new VaultError('parameter_invalid', { message: 'A card keyed in by an agent (moto) makes a single-use token; it cannot be saved.', param: 'reusable' });
  }
  req.actor = redactKey(body.key);
  // Named only past the rate limits, so a flood of refused requests writes nothing.
  const entry = auditing(req, { merchantId: merchant.id, action: 'token.created' });

  // The token's one statement checks and counts the session and claims the key (see createToken).
  return deps.idempotency.runInStatement(`pk:${body.key}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
    deps.tokens.create(
      { merchant, ciphertext: body.card, reusable: body.reusable, customer: body.customer, moto: body.moto },
      {
        session: { id: body.session, publishableKey: body.key },
        claim,
        actor: entry.actor,
        source: auditSource(req),
        render: (outcome) => ({ status: 201, body: JSON.stringify(browserTokenBody(outcome.token)) }),
      },
    ),
  ).catch((error: unknown) => {
    // Only the merchant's server may learn that a card is already registered: the page gets the generic refusal.
    if (error instanceof VaultError && error.code === 'duplicate_card') throw new VaultError('card_not_accepted', { param: 'card' });
    throw error;
  });
}

async function createFromServer(deps: TokenRouteDeps, req: Request) {
  const merchant = await merchantFromSecretKey(req, deps.merchants);
  const entry = auditing(req, { merchantId: merchant.id, action: 'token.created' });
  const body = parseInput(ServerTokenRequest, req.body);
  // A verification calls the acquirer before the token's statement: the key is claimed first (see createToken).
  const run = body.verify ? deps.idempotency.run.bind(deps.idempotency) : deps.idempotency.runInStatement.bind(deps.idempotency);
  return run(`merchant:${merchant.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), (claim) =>
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
        actor: entry.actor,
        source: auditSource(req),
        render: (outcome) => ({ status: outcome.existing ? 200 : 201, body: JSON.stringify(createdTokenBody(outcome, merchant.network_tokens)) }),
      },
    ),
  );
}
