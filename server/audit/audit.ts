import type { Request } from 'express';
import { clientIp } from '../http/client-ip.ts';
import { newId } from '../lib/ids.ts';
import { eventBody } from '../events/render.ts';
import type { EventType } from '../events/types.ts';
import type { Queryable } from '../storage/db.ts';
import { auditChainHeads, verifyAuditChains, type AuditVerification, type ChainHead, type ChainWitness } from './chain.ts';

/** Every sensitive operation the vault records. */
export type AuditAction =
  | 'auth.failed'
  | 'auth.throttled'
  | 'audit.verified'
  | 'key.rotated'
  | 'key.rewrapped'
  | 'key.reencrypted'
  | 'merchant.data_key_rolled'
  | 'merchant.secret_key_rolled'
  | 'merchant.created'
  | 'merchant.read'
  | 'merchant.updated'
  | 'token.created'
  | 'token.reused'
  | 'token.verified'
  | 'token.read'
  | 'token.listed'
  | 'token.updated'
  | 'token.deleted'
  | 'token_batch.created'
  | 'token_batch.read'
  | 'token_batch.completed'
  | 'network_token.requested'
  | 'network_token.created'
  | 'network_token.updated'
  | 'payment.authorized'
  | 'payment.declined'
  | 'payment.captured'
  | 'payment.voided'
  | 'payment.refunded'
  | 'payment.read'
  | 'payment.listed'
  | 'payment_link.created'
  | 'payment_link.paid'
  | 'payment_link.expired'
  | 'payment_batch.created'
  | 'payment_batch.read'
  | 'payment_batch.completed'
  | 'events.listed'
  | 'webhook_endpoint.created'
  | 'webhook_endpoint.updated'
  | 'webhook_endpoint.deleted'
  | 'webhook_endpoint.secret_rotated'
  | 'webhook_delivery.retried'
  | 'subscription.created'
  | 'subscription.charged'
  | 'subscription.charge_failed'
  | 'subscription.canceled'
  | 'sandbox.clock_advanced';

/** Where a request came from: every audit entry records it (PCI DSS 10.2.2, origination). */
export interface AuditSource {
  /** The client's address (`clientIp`). */
  clientIp: string;
  /** The request's id, as its `Request-Id` header and the access log name it. */
  requestId: string;
}

/** The source of the request being answered. */
export function auditSource(req: Request): AuditSource {
  return { clientIp: clientIp(req), requestId: req.id };
}

export interface AuditEntry extends AuditSource {
  /** Null for the operator's entries: admin actions, and every failed authentication. */
  merchantId: string | null;
  /** The acting key's redacted id (`actorOf`), `admin`, or `unknown`. */
  actor: string;
  action: AuditAction;
  outcome: 'succeeded' | 'failed';
  /** The API error code of a failed operation. */
  code?: string | undefined;
  token?: string | undefined;
  paymentId?: string | undefined;
  /**
   * Set when the entry records a state change the merchant may act on: the
   * event's type and the object as the change left it (the vault's record
   * of it, never card data). The entry is then also an event.
   */
  event?: { type: EventType; data: unknown } | undefined;
}

export interface AuditEvent {
  id: string;
  actor: string;
  action: AuditAction;
  outcome: 'succeeded' | 'failed';
  code: string | null;
  token: string | null;
  payment_id: string | null;
  client_ip: string | null;
  request_id: string | null;
  /** Set when the entry is also an event. */
  event_type: EventType | null;
  data: unknown;
  created_at: Date;
}

/**
 * A key as the audit log names it: enough for a person to tell their keys
 * apart (`sk_test_…Ab3x`, like a dashboard shows), never enough to use it.
 * Publishable keys are public and kept whole.
 */
export function redactKey(key: string): string {
  if (key.startsWith('pk_')) return key;
  const prefix = key.startsWith('sk_test_') ? 'sk_test_' : key.startsWith('sk_') ? 'sk_' : '';
  return prefix === '' ? 'unknown' : `${prefix}…${key.slice(-4)}`;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by authentication: who is acting, as the audit log names them. */
    actor?: string;
    /**
     * Set by a route before its work: what to record if the request fails.
     * The work records success itself, in its own transaction.
     */
    audit?: Omit<AuditEntry, 'outcome' | 'code'>;
  }
}

/** Names the operation a route is about to do, so a failure is recorded too (see `errorHandler`). */
export function auditing(req: Request, entry: Omit<AuditEntry, 'outcome' | 'code' | 'actor' | keyof AuditSource>): AuditEntry {
  req.audit = { ...entry, actor: req.actor ?? 'unknown', ...auditSource(req) };
  return { ...req.audit, outcome: 'succeeded' };
}

/**
 * The audit log: who did what to which token or payment, from where, and how
 * it ended. Entries of a successful operation are written in the operation's
 * own transaction (pass it as `q`), after its other writes: an entry locks its
 * chain until commit (see server/storage/functions/audit_chain_link.sql).
 * Failures are written on their own.
 */
export class AuditLog {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async record(entry: AuditEntry, q: Queryable = this.#db): Promise<void> {
    await q.query(
      `insert into audit_events (id, merchant_id, actor, action, outcome, code, token, payment_id, client_ip, request_id, event_type, data)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        newId('evt'),
        entry.merchantId,
        entry.actor,
        entry.action,
        entry.outcome,
        entry.code ?? null,
        entry.token ?? null,
        entry.paymentId ?? null,
        entry.clientIp,
        entry.requestId,
        entry.event?.type ?? null,
        entry.event === undefined ? null : JSON.stringify(entry.event.data),
      ],
    );
  }

  /**
   * Writes many entries in one statement, in the order given (each is chained
   * by the insert trigger as it goes in): for work that records a batch, such
   * as a round of subscription charges.
   */
  async recordMany(entries: readonly AuditEntry[], q: Queryable = this.#db): Promise<void> {
    if (entries.length === 0) return;
    const rows = entries.map((entry) => ({
      id: newId('evt'),
      merchant_id: entry.merchantId,
      actor: entry.actor,
      action: entry.action,
      outcome: entry.outcome,
      code: entry.code ?? null,
      token: entry.token ?? null,
      payment_id: entry.paymentId ?? null,
      client_ip: entry.clientIp,
      request_id: entry.requestId,
      event_type: entry.event?.type ?? null,
      data: entry.event === undefined ? null : entry.event.data,
    }));
    await q.query(
      `insert into audit_events (id, merchant_id, actor, action, outcome, code, token, payment_id, client_ip, request_id, event_type, data)
       select id, merchant_id, actor, action, outcome, code, token, payment_id, client_ip, request_id, event_type, data
         from rows from (jsonb_to_recordset($1::jsonb) as (id text, merchant_id text, actor text, action text, outcome text, code text,
                                                           token text, payment_id text, client_ip text, request_id text,
                                                           event_type text, data jsonb))
              with ordinality as e(id, merchant_id, actor, action, outcome, code, token, payment_id, client_ip, request_id, event_type, data, n)
        order by n`,
      [JSON.stringify(rows)],
    );
  }

  /** Recomputes every chain and checks each witness (see `verifyAuditChains`). */
  verify(witnesses: readonly ChainWitness[] = []): Promise<AuditVerification> {
    return verifyAuditChains(this.#db, witnesses);
  }

  /** Every chain's last entry: what an outside witness writes down. */
  chainHeads(): Promise<ChainHead[]> {
    return auditChainHeads(this.#db);
  }

  /** The merchant's own events, newest first; `startingAfter` is the last event id of the previous page. */
  async list(
    merchantId: string,
    filter: { limit: number; startingAfter?: string | undefined; token?: string | undefined; paymentId?: string | undefined },
  ): Promise<{ events: AuditEvent[]; hasMore: boolean }> {
    const { rows } = await this.#db.query<AuditEvent>(
      `select id, actor, action, outcome, code, token, payment_id, client_ip, request_id, event_type, data, created_at
         from audit_events
        where merchant_id = $1
          and ($2::text is null or token = $2)
          and ($3::text is null or payment_id = $3)
          and ($4::text is null or seq < (select seq from audit_events where id = $4 and merchant_id = $1))
        order by seq desc
        limit $5`,
      [merchantId, filter.token ?? null, filter.paymentId ?? null, filter.startingAfter ?? null, filter.limit + 1],
    );
    return { events: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
  }
}

/**
 * An entry of `GET /v1/events`: who did what, from where, and how it ended;
 * an entry that is also an event carries its `type` and `data.object` (the
 * same as its webhook), so the merchant reads one log.
 */
export function auditEventBody(event: AuditEvent) {
  return {
    id: event.id,
    object: 'event',
    ...(event.event_type === null ? {} : eventBody({ id: event.id, event_type: event.event_type, data: event.data, created_at: event.created_at })),
    action: event.action,
    outcome: event.outcome,
    code: event.code,
    actor: event.actor,
    token: event.token,
    payment: event.payment_id,
    request_id: event.request_id,
    client_ip: event.client_ip,
    created_at: event.created_at.toISOString(),
  };
}
