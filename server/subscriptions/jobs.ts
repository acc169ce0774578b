import { z } from 'zod';
import { enqueueJob, type JobHandler } from '../jobs/index.ts';
import type { Db, Queryable } from '../storage/db.ts';
import type { SubscriptionCharger } from './charger.ts';

/** Charges what is due for one merchant (`merchant`), or for every merchant (null). */
export const CHARGE_JOB = 'subscriptions.charge';
/** Real time's turn: every scan interval, charge what came due on any merchant's clock. */
export const SCAN_JOB = 'subscriptions.scan';

/**
 * Charge jobs run at once by each vault process; several share one
 * merchant's due charges (each claims its own batches), so a clock advance
 * fans out this many and every node takes part.
 */
export const CHARGE_CONCURRENCY = 4;
export const CHARGE_FAN_OUT = 8;

export function chargeJob(charger: SubscriptionCharger): JobHandler<{ merchant: string | null }> {
  return {
    kind: CHARGE_JOB,
    payload: z.object({ merchant: z.string().nullable() }),
    concurrency: CHARGE_CONCURRENCY,
    async run(job) {
      await charger.runDue(job.payload.merchant, { requestId: `job_${job.id}`, signal: job.signal });
    },
  };
}

/** Enqueues charge jobs in `q`'s transaction: `fanOut` of them, for one merchant or all, under keys that start with `key`. */
export async function enqueueCharges(q: Queryable, options: { merchant: string | null; key: string; fanOut?: number }): Promise<void> {
  for (let i = 0; i < (options.fanOut ?? CHARGE_FAN_OUT); i++) {
    await enqueueJob(q, { kind: CHARGE_JOB, key: `${options.key}:${i}`, payload: { merchant: options.merchant } });
  }
}

/** The scan job of the interval that holds `ms`: one per interval, whichever node enqueues it first. */
const scanKey = (ms: number, scanMs: number) => `scan:${Math.floor(ms / scanMs)}`;

/**
 * The scan that follows the one keyed `ownKey`, run at `now`: the next
 * interval after both now and its own. A job's `run_at` is the database's
 * transaction time plus a delay reckoned from this process's clock a little
 * later, so a scan can start a few milliseconds before its interval does;
 * reckoned from `now` alone, it would then name itself, the insert would
 * meet its own row, and real-time charging would stop until a restart.
 */
export function nextScan(ownKey: string | null, now: number, scanMs: number): { key: string; delayMs: number } {
  const own = /^scan:(\d+)$/.exec(ownKey ?? '');
  const interval = Math.max(Math.floor(now / scanMs), own === null ? -1 : Number(own[1])) + 1;
  return { key: `scan:${interval}`, delayMs: Math.max(0, interval * scanMs - now) };
}

/**
 * Real time drives the schedule: a scan job per interval (`scanMs`) fans
 * out charge jobs when anything is due, then enqueues the next interval's
 * scan in the transaction that completes it, so the chain survives crashes
 * and restarts (every start enqueues the current interval's, a no-op when
 * it exists).
 */
export function scanJob(deps: { db: Db; scanMs: number; charger: SubscriptionCharger }): JobHandler<Record<string, unknown>> {
  return {
    kind: SCAN_JOB,
    payload: z.record(z.string(), z.unknown()),
    async run(job) {
      const due = await deps.charger.anyDue(null);
      await deps.db.transaction(async (tx) => {
        if (due) await enqueueCharges(tx, { merchant: null, key: job.key ?? `scan-job:${job.id}`, fanOut: 2 });
        await enqueueJob(tx, { kind: SCAN_JOB, ...nextScan(job.key, Date.now(), deps.scanMs) });
        await job.complete(tx);
      });
    },
  };
}

/** Starts the scan chain if it is not running (a no-op when this interval's scan exists). */
export async function ensureScan(db: Db, scanMs: number): Promise<void> {
  await enqueueJob(db, { kind: SCAN_JOB, key: scanKey(Date.now(), scanMs) });
}
