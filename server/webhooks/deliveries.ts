import type { Logger } from 'pino';
import { z } from 'zod';
import { eventBody } from '../events/render.ts';
import type { EventType } from '../events/types.ts';
import { JobClaimLost, RetryJobLater, type Job, type JobHandler } from '../jobs/index.ts';
import type { Db } from '../storage/db.ts';
import { callFunction, refusalOf } from '../storage/functions.ts';
import { DELIVERY_JOB, type WebhookEndpoints } from './endpoints.ts';
import type { DeliveryResult, WebhookSender } from './sender.ts';

interface DeliveryToSend {
  id: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  endpoint_id: string;
  url: string | null;
  disabled: boolean | null;
  secret_sealed: Uint8Array | null;
  previous_secret_sealed: Uint8Array | null;
  previous_secret_live: boolean;
  event_id: string;
  event_type: EventType;
  data: unknown;
  event_created_at: Date;
}

/**
 * The job that sends one delivery (`webhook.deliver`): it renders the event,
 * signs it with the endpoint's live secrets, sends it (SSRF-safe,
 * `WebhookSender`) and records the attempt. Delivered: done. Anything else
 * is tried again on the retry schedule — later if the endpoint's
 * `Retry-After` asks — until the schedule is spent (`failed`); a 410
 * disables the endpoint. At least once: a vault that dies after sending and
 * before recording sends again (same `webhook-id`, so receivers drop it).
 */
export function deliveryJob(deps: { db: Db; endpoints: WebhookEndpoints; sender: WebhookSender; retrySchedule: readonly number[]; log: Logger }): JobHandler<{
  delivery: string;
  manual?: boolean | undefined;
}> {
  return {
    kind: DELIVERY_JOB,
    payload: z.object({ delivery: z.string(), manual: z.boolean().optional() }),
    // Enough to keep a slow receiver from holding up the others; each endpoint keeps its own connections.
    concurrency: 32,
    async run(job) {
      const delivery = await load(deps.db, job.payload.delivery);
      // Gone (its endpoint deleted), already delivered (a manual retry got there first), or nowhere to send any more.
      if (delivery === undefined || (delivery.state === 'delivered' && !job.payload.manual) || delivery.url === null) {
        return deps.db.transaction((tx) => job.complete(tx));
      }
      if (delivery.disabled) return settle(deps.db, job, delivery, { state: 'failed' });

      const body = JSON.stringify(
        eventBody({ id: delivery.event_id, event_type: delivery.event_type, data: delivery.data, created_at: delivery.event_created_at }),
      );
      const result = await deps.sender.deliver({
        url: delivery.url,
        id: delivery.event_id,
        body,
        secrets: deps.endpoints.liveSecrets({ ...delivery, id: delivery.endpoint_id, secret_sealed: delivery.secret_sealed! }),
      });
      const attempt = delivery.attempts + 1;
      if (result.outcome === 'delivered') return settle(deps.db, job, delivery, { state: 'delivered', attempt: { number: attempt, result } });
      if (result.outcome === 'gone') return settle(deps.db, job, delivery, { state: 'failed', attempt: { number: attempt, result }, disableEndpoint: true });

      // Waits between attempts: the schedule's, or longer when the receiver asks for it.
      const wait = deps.retrySchedule[attempt - 1];
      if (wait === undefined) return settle(deps.db, job, delivery, { state: 'failed', attempt: { number: attempt, result } });
      const afterMs = Math.max(wait, (result.retryAfterSeconds ?? 0) * 1000);
      await settle(deps.db, undefined, delivery, { state: 'pending', attempt: { number: attempt, result }, nextInMs: afterMs });
      throw new RetryJobLater(`delivery ${delivery.id} attempt ${attempt}: ${result.error ?? `status ${result.status}`}`, { afterMs });
    },
  };
}

async function load(db: Db, deliveryId: string): Promise<DeliveryToSend | undefined> {
  const { rows } = await db.query<DeliveryToSend>(
    `select d.id, d.state, d.attempts, d.endpoint_id, w.url, w.disabled, w.secret_sealed, w.previous_secret_sealed,
            coalesce(w.previous_secret_expires_at > now(), false) as previous_secret_live,
            e.id as event_id, e.event_type, e.data, e.created_at as event_created_at
       from webhook_deliveries d
       join audit_events e on e.id = d.event_id
       left join webhook_endpoints w on w.id = d.endpoint_id
      where d.id = $1`,
    [deliveryId],
  );
  return rows[0];
}

/**
 * Records an attempt and where the delivery stands, in one statement
 * (tessera_settle_delivery); a final state completes the job in it, so a
 * recorded delivery is never sent again.
 */
async function settle(
  db: Db,
  job: Job<unknown> | undefined,
  delivery: DeliveryToSend,
  outcome: {
    state: 'pending' | 'delivered' | 'failed';
    attempt?: { number: number; result: DeliveryResult };
    nextInMs?: number;
    disableEndpoint?: boolean;
  },
): Promise<void> {
  const { attempt } = outcome;
  const call = (claim: { id: string; claim: string } | undefined) =>
    callFunction<null>(db, 'tessera_settle_delivery', {
      delivery_id: delivery.id,
      endpoint_id: delivery.endpoint_id,
      state: outcome.state,
      attempt: attempt?.number ?? null,
      status_code: attempt?.result.status ?? null,
      latency_ms: attempt === undefined ? null : Math.round(attempt.result.latencyMs),
      error: attempt?.result.error ?? null,
      next_in_ms: outcome.nextInMs ?? null,
      disable_endpoint: outcome.disableEndpoint ?? false,
      job_id: claim?.id ?? null,
      job_claim: claim?.claim ?? null,
    }).catch((error: unknown) => {
      if (claim !== undefined && refusalOf(error)?.refusal === 'job_claim_lost') throw new JobClaimLost(claim.id);
      throw error;
    });
  if (job === undefined) await call(undefined);
  else await job.completeIn(call);
}
