import { Router } from 'express';
import { z } from 'zod';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { requireAdmin } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { ADMIN_SCOPE, idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import { recordResponse, type IdempotencyStore, type StoredResponse } from '../idempotency/idempotency.ts';
import type { DataKeyRotation } from './data-key-rotation.ts';
import type { MasterKeyRewrap } from './master-key-rewrap.ts';
import type { Db } from '../storage/db.ts';
import type { TransportKeyring } from './transport-keys.ts';

const RotateRequest = z.strictObject({
  grace_seconds: z.number().int().min(0).max(30 * 24 * 3600).optional(),
});

/** A long-running key job answers after at most this long; the CLI calls again until nothing remains. */
const KEY_JOB_SECONDS = 20;
const KeyJobRequest = z.strictObject({
  batch_size: z.number().int().min(1).max(10_000).optional(),
  /** Seconds the call may work before answering with what remains. */
  max_seconds: z.number().min(0).max(KEY_JOB_SECONDS).optional(),
});

export function keyRoutes(deps: {
  db: Db;
  keyring: TransportKeyring;
  adminKey: string;
  defaultGraceSeconds: number;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  dataKeyRotation: DataKeyRotation;
  masterKeyRewrap: MasterKeyRewrap;
}): Router {
  const router = Router();

  router.get('/v1/keys', async (_req, res) => {
    // Public keys: any page may read them; short caching so a rotation shows up quickly.
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'public, max-age=60' }).json(await deps.keyring.jwks());
  });

  router.post('/v1/keys/rotate', requireAdmin(deps.adminKey), async (req, res) => {
    const entry = auditing(req, { merchantId: null, action: 'key.rotated' });
    const body = parseInput(RotateRequest, req.body);
    const grace = body.grace_seconds ?? deps.defaultGraceSeconds;
    // A retry of a rotation whose answer was lost must not retire the key it published.
    const stored = await deps.idempotency.run(ADMIN_SCOPE, idempotencyKeyOf(req), idempotentRequest(req, body), async (claim) => {
      let response: StoredResponse | undefined;
      await deps.keyring.rotate(grace, async (tx, rotated) => {
        response = { status: 201, body: JSON.stringify({ kid: rotated.kid, retired: rotated.retired, grace_seconds: grace }) };
        await recordResponse(tx, claim, response);
        await deps.audit.record(entry, tx);
      });
      return response!;
    });
    sendStored(res, stored);
  });

  /**
   * A key job (rewrap or re-encryption) runs for at most `max_seconds` and
   * answers its progress; it is idempotent by nature, and an Idempotency-Key
   * replays the answer of its first call like any POST.
   */
  const keyJob = (path: string, action: 'key.rewrapped' | 'key.reencrypted', object: string, job: DataKeyRotation | MasterKeyRewrap) =>
    router.post(path, requireAdmin(deps.adminKey), async (req, res) => {
      const entry = auditing(req, { merchantId: null, action });
      const body = parseInput(KeyJobRequest, req.body);
      const stored = await deps.idempotency.run(ADMIN_SCOPE, idempotencyKeyOf(req), idempotentRequest(req, body), async (claim) => {
        const progress = await job.run({ batchSize: body.batch_size, deadline: Date.now() + (body.max_seconds ?? KEY_JOB_SECONDS) * 1000 });
        const response = { status: 200, body: JSON.stringify({ object, ...progress }) };
        await deps.db.transaction(async (tx) => {
          await recordResponse(tx, claim, response);
          await deps.audit.record(entry, tx);
        });
        return response;
      });
      sendStored(res, stored);
    });
  // Moves every wrap made under a previous master key (TESSERA_MASTER_KEY_PREVIOUS) to the current one.
  keyJob('/v1/keys/rewrap', 'key.rewrapped', 'master_key_rewrap', deps.masterKeyRewrap);
  // Re-encrypts cards still under an older data key version, then destroys the versions nothing uses.
  keyJob('/v1/keys/reencrypt', 'key.reencrypted', 'data_key_reencryption', deps.dataKeyRotation);

  return router;
}
