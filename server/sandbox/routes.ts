import { Router } from 'express';
import { auditing, type AuditLog } from '../audit/audit.ts';
import { merchantOf, requireSecretKey } from '../http/auth.ts';
import { parseInput } from '../http/errors.ts';
import { idempotencyKeyOf, idempotentRequest, sendStored } from '../http/idempotent.ts';
import { recordResponse, type IdempotencyStore } from '../idempotency/idempotency.ts';
import { newId } from '../lib/ids.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { Db } from '../storage/db.ts';
import { enqueueCharges } from '../subscriptions/jobs.ts';
import { chargesDue, chargeSummary, waitForCharges } from '../subscriptions/progress.ts';
import { AdvanceClockRequest } from '../subscriptions/schema.ts';
import { advanceClock, readClock } from './clock.ts';

export interface SandboxRouteDeps {
  db: Db;
  merchants: MerchantDirectory;
  idempotency: IdempotencyStore;
  audit: AuditLog;
}

/** How long an advance waits for its charges before answering `advancing` (GET then says when it is `ready`). */
const ADVANCE_WAIT_MS = 5 * 60_000;

/**
 * The merchant's sandbox clock. `POST` moves it forward, has every vault
 * node charge what came due (charge jobs, fanned out), and answers once
 * all of it has run.
 */
export function sandboxRoutes(deps: SandboxRouteDeps): Router {
  const router = Router();
  router.use('/v1/sandbox', requireSecretKey(deps.merchants));

  router.get('/v1/sandbox/clock', async (req, res) => {
    const merchant = merchantOf(req);
    const clock = await readClock(deps.db, merchant.id);
    const due = await chargesDue(deps.db, merchant.id);
    res.json({ object: 'sandbox_clock', now: clock.now.toISOString(), status: due === 0 ? 'ready' : 'advancing' });
  });

  router.post('/v1/sandbox/clock', async (req, res) => {
    const merchant = merchantOf(req);
    const body = parseInput(AdvanceClockRequest, req.body);
    const entry = auditing(req, { merchantId: merchant.id, action: 'sandbox.clock_advanced' });
    const stored = await deps.idempotency.run(`merchant:${merchant.id}`, idempotencyKeyOf(req), idempotentRequest(req, body), async (claim) => {
      const moved = await deps.db.transaction(async (tx) => {
        const moved = await advanceClock(tx, merchant.id, new Date(body.advance_to));
        await enqueueCharges(tx, { merchant: merchant.id, key: `clock:${newId('adv')}` });
        await deps.audit.record(entry, tx);
        return moved;
      });
      // The answer comes when the charges have run, which may take longer than an idle socket is kept.
      const idleMs = req.socket.timeout;
      req.socket.setTimeout(0);
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      try {
        const ready = await waitForCharges(deps.db, merchant.id, moved.to, { signal: gone.signal, timeoutMs: ADVANCE_WAIT_MS });
        const charges = await chargeSummary(deps.db, merchant.id, moved.from, moved.to);
        const response = {
          status: 200,
          body: JSON.stringify({ object: 'sandbox_clock', now: moved.to.toISOString(), status: ready ? 'ready' : 'advancing', charges }),
        };
        await recordResponse(deps.db, claim, response);
        return response;
      } finally {
        if (!res.destroyed) req.socket.setTimeout(idleMs ?? 0);
      }
    });
    sendStored(res, stored);
  });

  return router;
}
