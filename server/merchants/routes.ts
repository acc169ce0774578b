import { Router } from 'express';
import { z } from 'zod';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { merchantOf, requireAdmin, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { ADMIN_SCOPE, idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import { recordResponse, type IdempotencyStore, type ResponseSeal, type StoredResponse } from '../idempotency/idempotency.ts';
import { freeText } from '../lib/free-text.ts';
import { CreateMerchantSchema, UpdateMerchantSchema } from './schema.ts';
import { merchantBody, type MerchantDirectory } from './service.ts';

const ListMerchantsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: freeText({ max: 68, pattern: /^mer_[0-9A-Za-z]{1,64}$/ }).optional(),
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
    if (page === undefined) throw new VaultError('parameter_invalid', { message: 'No merchant has the id given in starting_after.', param: 'starting_after' });
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

  /**
   * A new secret key, shown this once; the merchant's other keys keep
   * working for `expires_in` seconds (default 24 h; 0 ends them now), so a
   * fleet of servers can switch over. The stored idempotent answer is sealed,
   * since it carries the key.
   */
  router.post('/v1/merchant/keys/roll', requireSecretKey(deps.merchants), async (req, res) => {
    const merchantId = merchantOf(req).id;
    const entry = auditing(req, { merchantId, action: 'merchant.secret_key_rolled' });
    const body = parseInput(RollSecretKeyRequest, req.body);
    const stored = await deps.idempotency.run(
      `merchant:${merchantId}`,
      idempotencyKeyOf(req),
      idempotentRequest(req, body),
      async (claim) => {
        let response: StoredResponse | undefined;
        await deps.merchants.rollSecretKey(merchantId, body.expires_in, async (tx, rolled) => {
          response = {
            status: 201,
            body: JSON.stringify({ object: 'secret_key', secret_key: rolled.secretKey, previous_keys_expire_at: rolled.previousExpiresAt.toISOString() }),
          };
          await recordResponse(tx, claim, response);
          await deps.audit.record(entry, tx);
        });
        return response!;
      },
      { seal: deps.responseSeal },
    );
    sendStored(res, stored);
  });

  // Admin: starts a new data key version for a merchant; the re-encryption moves the cards to it and destroys the old one.
  router.post('/v1/merchants/:id/data-key/roll', requireAdmin(deps.adminKey), async (req, res) => {
    const { id } = parseInput(MerchantPath, req.params);
    const entry = auditing(req, { merchantId: null, action: 'merchant.data_key_rolled' });
    const body = parseInput(z.strictObject({}), req.body);
    const stored = await deps.idempotency.run(ADMIN_SCOPE, idempotencyKeyOf(req), idempotentRequest(req, body), async (claim) => {
      let response: StoredResponse | undefined;
      const rolled = await deps.merchants.rollDataKey(id, async (tx, { version }) => {
        response = { status: 201, body: JSON.stringify({ object: 'data_key', merchant: id, version }) };
        await recordResponse(tx, claim, response);
        await deps.audit.record({ ...entry, merchantId: id }, tx);
      });
      if (rolled === undefined) throw new VaultError('merchant_not_found', { param: 'id' });
      return response!;
    });
    sendStored(res, stored);
  });

  /**
   * Admin: a new secret key for a merchant, shown once — the way back in for
   * a merchant that lost its only key (say, a roll with `expires_in: 0`
   * whose answer never arrived). Its other keys expire after `expires_in`
   * (default now: the reason to come here is usually a lost or leaked key).
   */
  router.post('/v1/merchants/:id/secret-keys', requireAdmin(deps.adminKey), async (req, res) => {
    const { id } = parseInput(MerchantPath, req.params);
    const entry = auditing(req, { merchantId: null, action: 'merchant.secret_key_rolled' });
    const body = parseInput(IssueSecretKeyRequest, req.body);
    const stored = await deps.idempotency.run(
      ADMIN_SCOPE,
      idempotencyKeyOf(req),
      idempotentRequest(req, body),
      async (claim) => {
        if ((await deps.merchants.byId(id)) === undefined) throw new VaultError('merchant_not_found', { param: 'id' });
        let response: StoredResponse | undefined;
        await deps.merchants.rollSecretKey(id, body.expires_in, async (tx, rolled) => {
          response = {
            status: 201,
            body: JSON.stringify({ object: 'secret_key', merchant: id, secret_key: rolled.secretKey, previous_keys_expire_at: rolled.previousExpiresAt.toISOString() }),
          };
          await recordResponse(tx, claim, response);
          await deps.audit.record({ ...entry, merchantId: id }, tx);
        });
        return response!;
      },
      { seal: deps.responseSeal },
    );
    sendStored(res, stored);
  });

  return router;
}

/** Issued by the operator, a new key ends the others at once unless told otherwise. */
const IssueSecretKeyRequest = z.strictObject({
  expires_in: z.number().int().min(0).max(7 * 24 * 3600).default(0),
});

const MerchantPath = z.strictObject({ id: z.string().regex(/^mer_[0-9A-Za-z]{1,64}$/) });

/** At most a week: a rolled key is meant to be replaced everywhere soon. */
const RollSecretKeyRequest = z.strictObject({
  expires_in: z.number().int().min(0).max(7 * 24 * 3600).default(24 * 3600),
});
