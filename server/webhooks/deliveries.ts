import type { Logger } from 'pino';
import { z } from 'zod';
import { eventBody } from '../events/render.ts';
import type { EventType } from '../events/types.ts';
import { JobClaimLost, RetryJobLater, type Job, type JobHandler } from '../jobs/index.ts';
import type { Db } from '../storage/db.ts';
import { callFunction } from '../storage/functions.ts';
import { Coalescer } from '../lib/coalesce.ts';
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
  const store = new DeliveryStore(deps.db);
  return {
    kind: DELIVERY_JOB,
    payload: z.object({ delivery: z.string(), manual: z.boolean().optional() }),
    // Enough to keep a slow receiver from holding up the others; each endpoint keeps its own connections.
    concurrency: 32,
    async run(job) {
      const delivery = await store.load(job.payload.delivery);
      // Gone (its endpoint deleted), already delivered (a manual retry got there first), or nowhere to send any more.
      if (delivery === undefined || (delivery.state === 'delivered' && !job.payload.manual) || delivery.url === null) {
        return deps.db.transaction((tx) => job.complete(tx));
      }
      if (delivery.disabled) return store.settle(job, delivery, { state: 'failed' });

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
      if (result.outcome === 'delivered') return store.settle(job, delivery, { state: 'delivered', attempt: { number: attempt, result } });
      if (result.outcome === 'gone') return store.settle(job, delivery, { state: 'failed', attempt: { number: attempt, result }, disableEndpoint: true });

      // Waits between attempts: the schedule's, or longer when the receiver asks for it.
      const wait = deps.retrySchedule[attempt - 1];
      if (wait === undefined) return store.settle(job, delivery, { state: 'failed', attempt: { number: attempt, result } });
      const afterMs = Math.max(wait, (result.retryAfterSeconds ?? 0) * 1000);
      await store.settle(undefined, delivery, { state: 'pending', attempt: { number: attempt, result }, nextInMs: afterMs });
      throw new RetryJobLater(`delivery ${delivery.id} attempt ${attempt}: ${result.error ?? `status ${result.status}`}`, { afterMs });
    },
  };
}

interface Settlement {
  delivery_id: string;
  endpoint_id: string;
  state: 'pending' | 'delivered' | 'failed';
  attempt: number | null;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
  next_in_ms: number | null;
  disable_endpoint: boolean;
  job_id: string | null;
  job_claim: string | null;
}

/** Most deliveries read, or settled, by one statement. */
const MAX_PER_STATEMENT = 64;

/**
 * The delivery job's reads and writes. Deliveries claimed together read
 * together, and those that finish while a settlement is being written are
 * settled together by the next one (`Coalescer`): under a backlog a
 * delivery costs a fraction of a statement each way, not one, while an
 * idle vault's lone delivery waits for nothing.
 */
class DeliveryStore {
  readonly #db: Db;
  readonly #loads: Coalescer<string, DeliveryToSend | undefined>;
  readonly #settlements: Coalescer<Settlement, boolean>;

  constructor(db: Db) {
    this.#db = db;
    this.#loads = new Coalescer((ids) => this.#loadAll(ids), { max: MAX_PER_STATEMENT });
    this.#settlements = new Coalescer((entries) => this.#settleAll(entries), { max: MAX_PER_STATEMENT });
  }

  load(deliveryId: string): Promise<DeliveryToSend | undefined> {
    return this.#loads.call(deliveryId);
  }

  /**
   * Records an attempt and where the delivery stands (tessera_settle_deliveries);
   * with `job`, a final state completes the job in the same statement, so a
   * recorded delivery is never sent again, and a claim found gone there
   * changes nothing and throws `JobClaimLost`.
   */
  async settle(
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
    const settlement = (claim: { id: string; claim: string } | undefined): Settlement => ({
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
    });
    if (job === undefined) {
      await this.#settlements.call(settlement(undefined));
      return;
    }
    await job.completeIn(async (claim) => {
      if (!(await this.#settlements.call(settlement(claim)))) throw new JobClaimLost(claim.id);
    });
  }

  async #loadAll(ids: string[]): Promise<(DeliveryToSend | undefined)[]> {
    const { rows } = await this.#db.query<DeliveryToSend>(
      `select d.id, d.state, d.attempts, d.endpoint_id, w.url, w.disabled, w.secret_sealed, w.previous_secret_sealed,
              coalesce(w.previous_secret_expires_at > now(), false) as previous_secret_live,
              e.id as event_id, e.event_type, e.data, e.created_at as event_created_at
         from webhook_deliveries d
         join audit_events e on e.id = d.event_id
         left join webhook_endpoints w on w.id = d.endpoint_id
        where d.id = any($1::text[])`,
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  }

  /** Each entry's answer: settled, or false when its job's claim was gone (nothing of it written). */
  async #settleAll(entries: Settlement[]): Promise<boolean[]> {
    const { rows } = await callFunction<string[]>(this.#db, 'tessera_settle_deliveries', { settlements: JSON.stringify(entries) });
    const lost = new Set((rows[0]?.result ?? []).map(String));
    return entries.map((entry) => entry.job_id === null || !lost.has(entry.job_id));
  }
}
