import { z } from 'zod';

/** How long the shop waits for the vault before treating the call as unanswered. */
const VAULT_TIMEOUT_MS = 10_000;

const CardSchema = z.object({ brand: z.string(), last4: z.string(), exp_month: z.number().int(), exp_year: z.number().int() });

/** A token's network token, as far as the shop shows it: never the network token number (the vault never sends it). */
const NetworkTokenSchema = z.object({
  id: z.string().regex(/^ntok_[A-Za-z0-9]+$/),
  network: z.string(),
  status: z.string(),
  card_art_id: z.string().nullable(),
  token_last4: z.string().nullable(),
});
export type VaultNetworkToken = z.infer<typeof NetworkTokenSchema>;

/** The part of the vault's token object the shop uses; the vault sends more (fingerprint, dates). */
const TokenSchema = z.object({
  token: z.string(),
  reusable: z.boolean(),
  customer: z.string().nullable(),
  used_at: z.string().nullable(),
  card: CardSchema,
  /** On reads: the token's newest network token, or null. */
  network_token: NetworkTokenSchema.nullable().optional(),
});
export type VaultToken = z.infer<typeof TokenSchema>;

const VerifiedTokenSchema = TokenSchema.extend({
  verification: z.object({ status: z.enum(['succeeded', 'failed']), decline_code: z.string().nullable() }),
});

/** A payment object, as the vault answers it and as its `payment.*` events carry it. */
export const PaymentSchema = z.object({
  id: z.string(),
  status: z.string(),
  amount: z.number(),
  currency: z.string(),
  amount_captured: z.number(),
  amount_refunded: z.number(),
  token: z.string(),
  card: z.object({ brand: z.string(), last4: z.string() }),
  reference: z.string().nullable(),
  decline_code: z.string().nullable(),
  // Stored credentials and channels (v2): who started it, how, and the subscription it charges.
  initiator: z.string().optional(),
  channel: z.string().optional(),
  subscription: z.string().nullish(),
  created_at: z.string(),
});
export type VaultPayment = z.infer<typeof PaymentSchema>;

const RefundSchema = z.object({ id: z.string(), amount: z.number(), payment: PaymentSchema });

const MerchantSchema = z.object({ id: z.string(), name: z.string(), unique_tokens: z.boolean(), network_tokens: z.boolean() });
export type VaultMerchant = z.infer<typeof MerchantSchema>;

const EventSchema = z.object({
  id: z.string(),
  action: z.string(),
  outcome: z.string(),
  code: z.string().nullable(),
  actor: z.string(),
  token: z.string().nullable(),
  payment: z.string().nullable(),
  created_at: z.string(),
});
export type VaultEvent = z.infer<typeof EventSchema>;

/** A rolled secret key: the vault shows it in this answer only. */
const RolledSecretKeySchema = z.object({
  object: z.literal('secret_key'),
  secret_key: z.string().regex(/^sk_[0-9A-Za-z_]{1,128}$/),
  previous_keys_expire_at: z.iso.datetime(),
});
export type RolledSecretKey = z.infer<typeof RolledSecretKeySchema>;

const PaymentLinkSchema = z.object({
  id: z.string(),
  url: z.string(),
  status: z.enum(['active', 'completed', 'expired']),
  amount: z.number(),
  currency: z.string(),
  description: z.string().nullable(),
  customer_email: z.string().nullable(),
  payments_count: z.number(),
  max_payments: z.number(),
  expires_at: z.string(),
  created_at: z.string(),
});
export type VaultPaymentLink = z.infer<typeof PaymentLinkSchema>;

const PaymentBatchSchema = z.object({
  id: z.string(),
  status: z.enum(['pending', 'processing', 'completed']),
  total: z.number(),
  processed: z.number(),
  succeeded: z.number(),
  failed: z.number(),
});
export type VaultPaymentBatch = z.infer<typeof PaymentBatchSchema>;

const PaymentBatchResultSchema = z.object({
  index: z.number(),
  op: z.string(),
  reference: z.string().nullable(),
  ok: z.boolean(),
  payment: z.string().optional(),
  status: z.string().nullable().optional(),
  error: z.object({ code: z.string(), message: z.string().nullable() }).optional(),
});
export type VaultPaymentBatchResult = z.infer<typeof PaymentBatchResultSchema>;

const listOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), has_more: z.boolean() });

/** A webhook endpoint as the vault lists it: never its secret. */
const WebhookEndpointSchema = z.object({
  id: z.string().regex(/^we_[A-Za-z0-9]+$/),
  url: z.string(),
  events: z.array(z.string()),
  disabled: z.boolean(),
  disabled_reason: z.string().nullable(),
});
export type VaultWebhookEndpoint = z.infer<typeof WebhookEndpointSchema>;

/** The signing secret, which the vault shows only when it makes one (creation, rotation). */
const WebhookSecretSchema = z.string().regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/);
const EndpointWithSecretSchema = WebhookEndpointSchema.extend({ secret: WebhookSecretSchema });
export type VaultWebhookEndpointWithSecret = z.infer<typeof EndpointWithSecretSchema>;

const WebhookDeliverySchema = z.object({
  id: z.string(),
  event: z.string(),
  event_type: z.string(),
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.array(
    z.object({
      attempt: z.number().int(),
      attempted_at: z.string(),
      status_code: z.number().int().nullable(),
      latency_ms: z.number(),
      error: z.string().nullable(),
    }),
  ),
  next_attempt_at: z.string().nullable(),
  created_at: z.string(),
});
export type VaultWebhookDelivery = z.infer<typeof WebhookDeliverySchema>;

const ErrorBodySchema = z.object({ error: z.object({ code: z.string(), decline_code: z.string().nullish(), payment: z.string().nullish(), param: z.string().nullish() }) });

/** The vault answered, but not with what was asked for: its error `code` (and `decline_code` for a decline), or `unexpected_response`. */
export class VaultRequestError extends Error {
  override readonly name = 'VaultRequestError';

  constructor(
    readonly status: number,
    readonly code: string,
    readonly declineCode: string | undefined = undefined,
    /** The vault's `Retry-After` in seconds, when it sent a usable one (with 429 and 503). */
    readonly retryAfter: number | undefined = undefined,
    /** The request field the refusal is about (`items.3.reference`), when the vault names one. */
    readonly param: string | undefined = undefined,
  ) {
    super(`The vault answered ${status} ${code}.`);
  }
}

/** The vault could not be reached or did not answer within `VAULT_TIMEOUT_MS`: the outcome of a POST is unknown. */
export class VaultUnreachableError extends Error {
  override readonly name = 'VaultUnreachableError';

  constructor(options: { cause: unknown }) {
    super('The vault could not be reached or did not answer in time.', options);
  }
}

/**
 * A call that got no answer the shop can act on: it may have been done, so
 * it is sent again with the same Idempotency-Key and body (the vault makes
 * that safe) — a network failure, 502 `acquirer_error`, 409
 * `idempotency_in_flight` (the first request is still running), or 503.
 */
export const unanswered = (error: unknown): boolean =>
  error instanceof VaultUnreachableError ||
  (error instanceof VaultRequestError && (error.code === 'acquirer_error' || error.code === 'idempotency_in_flight' || error.status === 503));

export interface CreatePayment {
  token: string;
  amount: number;
  currency: string;
  capture: boolean;
  reference: string;
  /** The CVC handle from the card fields in cvc mode, passed on as it came. */
  cvc?: string | undefined;
  /** The first payment of a subscription: it sets up the card's stored credential for the charges after it. */
  setup_future_usage?: boolean;
  agreement?: 'subscription' | 'unscheduled' | 'installment';
  /** `moto`: an order taken by phone or mail, keyed in on the dashboard. */
  channel?: 'ecommerce' | 'moto';
}

/** The shop server's side of the vault API: calls made with the secret key, which never leaves this process. */
export class VaultClient {
  readonly #vaultUrl: string;
  #secretKey: string;
  /** Settles when the secret key roll under way, if any, is over. */
  #roll: Promise<void> | undefined;

  constructor(options: { vaultUrl: string; secretKey: string }) {
    this.#vaultUrl = options.vaultUrl;
    this.#secretKey = options.secretKey;
  }

  /** Every call from now on carries this key (the one a roll just gave). */
  useSecretKey(secretKey: string): void {
    this.#secretKey = secretKey;
  }

  /**
   * `POST /v1/merchant/keys/roll`: a new secret key; the merchant's other
   * keys stop working in `expiresIn` seconds (0: at once). A 401 to it is
   * final: it is the roll itself, which a retry would wait for.
   */
  rollSecretKey(expiresIn: number, idempotencyKey: string): Promise<RolledSecretKey> {
    return this.#call(RolledSecretKeySchema, 'POST', '/v1/merchant/keys/roll', { expires_in: expiresIn }, idempotencyKey, { duringRoll: 'fail' });
  }

  /**
   * Runs a secret key roll: `work` asks the vault for the key, switches to
   * it with `useSecretKey` and saves it. A call the vault refuses with 401
   * meanwhile (the roll may already have ended the key it carried) waits
   * for `work` and is sent once more if the key changed: a 401 means the
   * vault did nothing with it, so the one retry is safe for any call.
   */
  async rolling<T>(work: () => Promise<T>): Promise<T> {
    const done = work();
    const over = done.then(
      () => undefined,
      () => undefined,
    );
    this.#roll = over;
    try {
      return await done;
    } finally {
      if (this.#roll === over) this.#roll = undefined;
    }
  }

  readToken(token: string): Promise<VaultToken> {
    return this.#call(TokenSchema, 'GET', `/v1/tokens/${encodeURIComponent(token)}`);
  }

  /** The merchant's newest tokens (at most 100, one page), each with its network token. */
  async recentTokens(): Promise<VaultToken[]> {
    return (await this.#call(listOf(TokenSchema), 'GET', '/v1/tokens?limit=100')).data;
  }

  async deleteToken(token: string): Promise<void> {
    await this.#call(z.object({ deleted: z.literal(true) }), 'DELETE', `/v1/tokens/${encodeURIComponent(token)}`);
  }

  verifyToken(token: string, idempotencyKey: string) {
    return this.#call(VerifiedTokenSchema, 'POST', `/v1/tokens/${encodeURIComponent(token)}/verify`, {}, idempotencyKey);
  }

  createPayment(payment: CreatePayment, idempotencyKey: string): Promise<VaultPayment> {
    return this.#call(PaymentSchema, 'POST', '/v1/payments', payment, idempotencyKey);
  }

  async paymentsFor(reference: string): Promise<VaultPayment[]> {
    return (await this.#call(listOf(PaymentSchema), 'GET', `/v1/payments?reference=${encodeURIComponent(reference)}&limit=100`)).data;
  }

  async recentPayments(): Promise<VaultPayment[]> {
    return (await this.#call(listOf(PaymentSchema), 'GET', '/v1/payments?limit=100')).data;
  }

  capture(paymentId: string, idempotencyKey: string): Promise<VaultPayment> {
    return this.#call(PaymentSchema, 'POST', `/v1/payments/${encodeURIComponent(paymentId)}/capture`, {}, idempotencyKey);
  }

  void(paymentId: string, idempotencyKey: string): Promise<VaultPayment> {
    return this.#call(PaymentSchema, 'POST', `/v1/payments/${encodeURIComponent(paymentId)}/void`, {}, idempotencyKey);
  }

  async refund(paymentId: string, idempotencyKey: string): Promise<VaultPayment> {
    return (await this.#call(RefundSchema, 'POST', `/v1/payments/${encodeURIComponent(paymentId)}/refunds`, {}, idempotencyKey)).payment;
  }

  createPaymentLink(link: { amount: number; currency: string; description?: string; customer_email?: string }, idempotencyKey: string): Promise<VaultPaymentLink> {
    return this.#call(PaymentLinkSchema, 'POST', '/v1/payment-links', link, idempotencyKey);
  }

  async paymentLinks(): Promise<VaultPaymentLink[]> {
    return (await this.#call(listOf(PaymentLinkSchema), 'GET', '/v1/payment-links?limit=20')).data;
  }

  expirePaymentLink(id: string, idempotencyKey: string): Promise<VaultPaymentLink> {
    return this.#call(PaymentLinkSchema, 'POST', `/v1/payment-links/${encodeURIComponent(id)}/expire`, {}, idempotencyKey);
  }

  createPaymentBatch(batch: { correlation_id: string; items: { op: 'capture'; payment: string; reference?: string }[] }, idempotencyKey: string): Promise<VaultPaymentBatch> {
    return this.#call(PaymentBatchSchema, 'POST', '/v1/payment-batches', batch, idempotencyKey);
  }

  paymentBatch(id: string): Promise<VaultPaymentBatch> {
    return this.#call(PaymentBatchSchema, 'GET', `/v1/payment-batches/${encodeURIComponent(id)}`);
  }

  async paymentBatchResults(id: string): Promise<VaultPaymentBatchResult[]> {
    return (await this.#call(listOf(PaymentBatchResultSchema), 'GET', `/v1/payment-batches/${encodeURIComponent(id)}/results?limit=1000`)).data;
  }

  merchant(): Promise<VaultMerchant> {
    return this.#call(MerchantSchema, 'GET', '/v1/merchant');
  }

  updateMerchant(changes: { unique_tokens?: boolean; network_tokens?: boolean }): Promise<VaultMerchant> {
    return this.#call(MerchantSchema, 'PATCH', '/v1/merchant', changes);
  }

  /** The sandbox's issuer-side change of a network token (suspend, resume, delete, a reissued card). */
  networkTokenLifecycle(id: string, change: { event: string; exp_month?: number; exp_year?: number }, idempotencyKey: string): Promise<VaultNetworkToken> {
    return this.#call(NetworkTokenSchema, 'POST', `/v1/sandbox/network-tokens/${encodeURIComponent(id)}/lifecycle`, change, idempotencyKey);
  }

  async events(): Promise<VaultEvent[]> {
    return (await this.#call(listOf(EventSchema), 'GET', '/v1/events?limit=50')).data;
  }

  /** The merchant's webhook endpoints (at most 16, so one page holds them all). */
  async webhookEndpoints(): Promise<VaultWebhookEndpoint[]> {
    return (await this.#call(listOf(WebhookEndpointSchema), 'GET', '/v1/webhook-endpoints?limit=100')).data;
  }

  createWebhookEndpoint(endpoint: { url: string; events: string[] }, idempotencyKey: string): Promise<VaultWebhookEndpointWithSecret> {
    return this.#call(EndpointWithSecretSchema, 'POST', '/v1/webhook-endpoints', endpoint, idempotencyKey);
  }

  updateWebhookEndpoint(id: string, changes: { url?: string; events?: string[]; disabled?: boolean }, idempotencyKey: string): Promise<VaultWebhookEndpoint> {
    return this.#call(WebhookEndpointSchema, 'PATCH', `/v1/webhook-endpoints/${encodeURIComponent(id)}`, changes, idempotencyKey);
  }

  /** A new secret for the endpoint; the vault signs with the one before it as well for a day. */
  rotateWebhookSecret(id: string, idempotencyKey: string): Promise<VaultWebhookEndpointWithSecret> {
    return this.#call(EndpointWithSecretSchema, 'POST', `/v1/webhook-endpoints/${encodeURIComponent(id)}/rotate-secret`, {}, idempotencyKey);
  }

  /** The endpoint's latest deliveries, newest first, each with its attempts. */
  async webhookDeliveries(endpointId: string, limit: number): Promise<VaultWebhookDelivery[]> {
    return (await this.#call(listOf(WebhookDeliverySchema), 'GET', `/v1/webhook-endpoints/${encodeURIComponent(endpointId)}/deliveries?limit=${limit}`)).data;
  }

  /** Sends a delivery again now, whatever its state. */
  async retryWebhookDelivery(deliveryId: string, idempotencyKey: string): Promise<void> {
    await this.#call(z.object({ id: z.string() }), 'POST', `/v1/webhook-deliveries/${encodeURIComponent(deliveryId)}/retry`, {}, idempotencyKey);
  }

  /** Any other call, answered in `schema`'s shape (see vault-subscriptions.ts); `timeoutMs` for one that answers when its work is done. */
  request<T extends z.ZodType>(schema: T, method: string, path: string, body?: unknown, idempotencyKey?: string, timeoutMs?: number): Promise<z.output<T>> {
    return this.#call(schema, method, path, body, idempotencyKey, { duringRoll: 'retry', ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }

  async #call<T extends z.ZodType>(
    schema: T,
    method: string,
    path: string,
    body?: unknown,
    idempotencyKey?: string,
    options: { duringRoll: 'retry' | 'fail'; timeoutMs?: number } = { duringRoll: 'retry' },
  ): Promise<z.output<T>> {
    const secretKey = this.#secretKey;
    const timeoutMs = options.timeoutMs ?? VAULT_TIMEOUT_MS;
    try {
      return await this.#send(schema, method, path, secretKey, body, idempotencyKey, timeoutMs);
    } catch (error) {
      if (options.duringRoll === 'fail' || !(error instanceof VaultRequestError) || error.status !== 401) throw error;
      await this.#roll;
      if (this.#secretKey === secretKey) throw error;
      return this.#send(schema, method, path, this.#secretKey, body, idempotencyKey, timeoutMs);
    }
  }

  async #send<T extends z.ZodType>(
    schema: T,
    method: string,
    path: string,
    secretKey: string,
    body: unknown,
    idempotencyKey: string | undefined,
    timeoutMs: number,
  ): Promise<z.output<T>> {
    let status: number;
    let text: string;
    let retryAfter: string | null = null;
    try {
      // The body is read under the same deadline: a vault that stalls mid-answer is as unreachable as a silent one.
      const response = await fetch(new URL(path, this.#vaultUrl), {
        method,
        headers: {
          authorization: `Bearer ${secretKey}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      throw new VaultUnreachableError({ cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status >= 200 && status < 300) {
      const parsed = schema.safeParse(json);
      if (parsed.success) return parsed.data;
      throw new VaultRequestError(status, 'unexpected_response');
    }
    // Delta seconds only: the vault never sends an HTTP date.
    const wait = retryAfter !== null && /^\d{1,9}$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) : undefined;
    const error = ErrorBodySchema.safeParse(json);
    if (!error.success) throw new VaultRequestError(status, 'unexpected_response', undefined, wait);
    throw new VaultRequestError(status, error.data.error.code, error.data.error.decline_code ?? undefined, wait, error.data.error.param ?? undefined);
  }
}
