import { VaultError } from '../errors.ts';
import { enqueueJob } from '../jobs/index.ts';
import { aad } from '../keys/envelope.ts';
import type { MasterKey } from '../keys/master-key.ts';
import { newId } from '../lib/ids.ts';
import type { Db, Queryable } from '../storage/db.ts';
import { newestFirst, type Page } from '../storage/pagination.ts';
import { newWebhookSecret } from './signature.ts';

/** A merchant's webhook endpoint as the API shows it; its secret only when made or rotated. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  events: string[];
  disabled: boolean;
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface WebhookDelivery {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Date | null;
  created_at: Date;
  attempt_log: { attempt: number; attempted_at: string; status_code: number | null; latency_ms: number; error: string | null }[];
}

/** The most endpoints one merchant may have (api.md). */
export const MAX_ENDPOINTS = 16;
/** After a rotation, the old secret keeps signing alongside the new one this long. */
export const PREVIOUS_SECRET_SECONDS = 24 * 3600;

const COLUMNS = 'id, url, events, disabled, disabled_reason, created_at, updated_at';

/**
 * Webhook endpoints: where a merchant's events go. Secrets are `whsec_…`,
 * shown once (at creation and rotation), kept wrapped under the master key
 * because every delivery signs with them. A rotation keeps the old secret
 * signing alongside the new one for 24 hours, so receivers can switch over.
 */
export class WebhookEndpoints {
  readonly #db: Db;
  readonly #master: MasterKey;

  constructor(db: Db, master: MasterKey) {
    this.#db = db;
    this.#master = master;
  }

  /** A new endpoint and its secret, in one transaction with `within` (audit entry, idempotent answer). */
  async create(
    merchantId: string,
    input: { url: string; events: string[] },
    within: (tx: Queryable, created: { endpoint: WebhookEndpoint; secret: string }) => Promise<void>,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const id = newId('we');
    const secret = newWebhookSecret();
    return this.#db.transaction(async (tx) => {
      // Serialises creations of one merchant, so the limit holds under concurrency.
      await tx.query('select 1 from merchants where id = $1 for update', [merchantId]);
      const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from webhook_endpoints where merchant_id = $1', [merchantId]);
      if (count[0]!.n >= MAX_ENDPOINTS) throw new VaultError('too_many_webhook_endpoints', { param: 'url' });
      const { rows } = await tx.query<WebhookEndpoint>(
        `insert into webhook_endpoints (id, merchant_id, url, events, secret_sealed) values ($1, $2, $3, $4, $5) returning ${COLUMNS}`,
        [id, merchantId, input.url, input.events, this.#seal(id, secret)],
      );
      const created = { endpoint: rows[0]!, secret };
      await within(tx, created);
      return created;
    });
  }

  async get(merchantId: string, id: string): Promise<WebhookEndpoint> {
    const { rows } = await this.#db.query<WebhookEndpoint>(`select ${COLUMNS} from webhook_endpoints where merchant_id = $1 and id = $2`, [merchantId, id]);
    if (rows[0] === undefined) throw new VaultError('webhook_endpoint_not_found', { param: 'id' });
    return rows[0];
  }

  list(merchantId: string, page: { limit: number; startingAfter: string | undefined }): Promise<Page<WebhookEndpoint>> {
    return newestFirst<WebhookEndpoint>(this.#db, {
      select: COLUMNS,
      from: 'webhook_endpoints',
      idColumn: 'id',
      merchantId,
      where: 'true',
      params: [],
      limit: page.limit,
      startingAfter: page.startingAfter,
      notFound: 'webhook_endpoint_not_found',
    });
  }

  /** Changes the URL, the events or `disabled` (re-enabling clears why it was disabled). */
  async update(
    merchantId: string,
    id: string,
    changes: { url?: string | undefined; events?: string[] | undefined; disabled?: boolean | undefined },
    within: (tx: Queryable, endpoint: WebhookEndpoint) => Promise<void>,
  ): Promise<WebhookEndpoint> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<WebhookEndpoint>(
        `update webhook_endpoints set
           url = coalesce($3, url), events = coalesce($4, events),
           disabled = coalesce($5, disabled),
           disabled_reason = case when $5 is null then disabled_reason when $5 then 'merchant' else null end,
           updated_at = now()
         where merchant_id = $1 and id = $2
         returning ${COLUMNS}`,
        [merchantId, id, changes.url ?? null, changes.events ?? null, changes.disabled ?? null],
      );
      if (rows[0] === undefined) throw new VaultError('webhook_endpoint_not_found', { param: 'id' });
      await within(tx, rows[0]);
      return rows[0];
    });
  }

  async delete(merchantId: string, id: string, within: (tx: Queryable) => Promise<void>): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { rowCount } = await tx.query('delete from webhook_endpoints where merchant_id = $1 and id = $2', [merchantId, id]);
      if (rowCount === 0) throw new VaultError('webhook_endpoint_not_found', { param: 'id' });
      await within(tx);
    });
  }

  /** A new secret, shown once; the current one keeps signing alongside for 24 hours. */
  async rotateSecret(
    merchantId: string,
    id: string,
    within: (tx: Queryable, rotated: { endpoint: WebhookEndpoint; secret: string }) => Promise<void>,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const secret = newWebhookSecret();
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<WebhookEndpoint>(
        `update webhook_endpoints set
           previous_secret_sealed = secret_sealed,
           previous_secret_expires_at = now() + make_interval(secs => $4),
           secret_sealed = $3, updated_at = now()
         where merchant_id = $1 and id = $2
         returning ${COLUMNS}`,
        [merchantId, id, this.#seal(id, secret), PREVIOUS_SECRET_SECONDS],
      );
      if (rows[0] === undefined) throw new VaultError('webhook_endpoint_not_found', { param: 'id' });
      const rotated = { endpoint: rows[0], secret };
      await within(tx, rotated);
      return rotated;
    });
  }

  /** The secrets a delivery signs with now: the current one, and the one it replaced while that still signs. */
  liveSecrets(endpoint: { id: string; secret_sealed: Uint8Array; previous_secret_sealed: Uint8Array | null; previous_secret_live: boolean }): string[] {
    const open = (sealed: Uint8Array) => this.#master.unwrap(sealed, aad.webhookSecret(endpoint.id)).toString('utf8');
    return [open(endpoint.secret_sealed), ...(endpoint.previous_secret_sealed !== null && endpoint.previous_secret_live ? [open(endpoint.previous_secret_sealed)] : [])];
  }

  /** The endpoint's deliveries, newest first, each with its attempts. */
  async deliveries(merchantId: string, endpointId: string, page: { limit: number; startingAfter: string | undefined }): Promise<Page<WebhookDelivery>> {
    await this.get(merchantId, endpointId);
    return newestFirst<WebhookDelivery>(this.#db, {
      select: `id, endpoint_id, event_id, state, attempts, next_attempt_at, created_at,
               (select event_type from audit_events e where e.id = webhook_deliveries.event_id) as event_type,
               coalesce((select json_agg(json_build_object('attempt', a.attempt, 'attempted_at', a.attempted_at, 'status_code', a.status_code,
                                                            'latency_ms', a.latency_ms, 'error', a.error) order by a.attempt)
                           from webhook_attempts a where a.delivery_id = webhook_deliveries.id), '[]'::json) as attempt_log`,
      from: 'webhook_deliveries',
      idColumn: 'id',
      merchantId,
      where: 'endpoint_id = $3',
      params: [endpointId],
      limit: page.limit,
      startingAfter: page.startingAfter,
      notFound: 'webhook_delivery_not_found',
    });
  }

  /**
   * Sends a delivery again now, whatever its state: a new job (the first may
   * still exist, dead or done, under the delivery's own key), and the
   * delivery is pending again until it answers.
   */
  async retry(merchantId: string, deliveryId: string, within: (tx: Queryable) => Promise<void>): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ attempts: number }>(
        `update webhook_deliveries set state = 'pending', next_attempt_at = now(), updated_at = now()
          where merchant_id = $1 and id = $2 returning attempts`,
        [merchantId, deliveryId],
      );
      if (rows[0] === undefined) throw new VaultError('webhook_delivery_not_found', { param: 'id' });
      await enqueueJob(tx, {
        kind: DELIVERY_JOB,
        key: `${deliveryId}/retry/${rows[0].attempts}`,
        payload: { delivery: deliveryId, manual: true },
        maxAttempts: 1000,
      });
      await within(tx);
    });
  }

  #seal(endpointId: string, secret: string): Buffer {
    return this.#master.wrap(Buffer.from(secret, 'utf8'), aad.webhookSecret(endpointId));
  }
}

/** The job kind that sends one delivery (enqueued with the event by tessera_event_deliveries). */
export const DELIVERY_JOB = 'webhook.deliver';
