import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { AuditLog } from './audit/audit.ts';
import { auditRoutes } from './audit/routes.ts';
import { VaultError } from './errors.ts';
import { fieldsRoutes } from './fields/routes.ts';
import type { WidgetAssets } from './fields/assets.ts';
import { healthRoutes } from './health.ts';
import { AUTH_FAILURE_WINDOW_MS, AuthFailureThrottle } from './http/auth-throttle.ts';
import { errorHandler } from './http/errors.ts';
import type { RequestsInFlight } from './http/in-flight.ts';
import { jsonBody } from './http/json-body.ts';
import { windowCounters } from './http/counters.ts';
import { RATE_LIMIT_WINDOW_MS, RateLimiter } from './http/rate-limit.ts';
import { requestLog } from './http/request-log.ts';
import { onItsPaths } from './http/route-gate.ts';
import { wellFormedRequest } from './http/well-formed.ts';
import { IdempotencyStore, type ResponseSeal } from './idempotency/idempotency.ts';
import type { CiphertextPolicy } from './keys/card-ciphertext.ts';
import type { CardSealer } from './keys/card-keys.ts';
import type { CvcKeys } from './keys/cvc-keys.ts';
import type { DataKeyRotation } from './keys/data-key-rotation.ts';
import type { MasterKeyRewrap } from './keys/master-key-rewrap.ts';
import type { MerchantKeys } from './keys/merchant-keys.ts';
import type { TrustProxy } from './config.ts';
import type { DeclineVelocity } from './velocity/declines.ts';
import type { WebhookEndpoints } from './webhooks/endpoints.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import type { Acquirer } from './acquirer/acquirer.ts';
import { paymentBatchRoutes } from './payment-batches/routes.ts';
import { PaymentBatches } from './payment-batches/service.ts';
import { payPageRoutes } from './payment-links/page.ts';
import { payLinkRoutes, paymentLinkRoutes } from './payment-links/routes.ts';
import { PaymentLinks } from './payment-links/service.ts';
import { paymentRoutes } from './payments/routes.ts';
import { sandboxRoutes } from './sandbox/routes.ts';
import { subscriptionRoutes } from './subscriptions/routes.ts';
import { SubscriptionService } from './subscriptions/service.ts';
import { PaymentService } from './payments/service.ts';
import { keyRoutes } from './keys/routes.ts';
import type { TransportKeyring } from './keys/transport-keys.ts';
import { merchantRoutes } from './merchants/routes.ts';
import { MerchantDirectory } from './merchants/service.ts';
import { sessionRoutes } from './sessions/routes.ts';
import { FieldsSessions } from './sessions/service.ts';
import type { Db } from './storage/db.ts';
import { tokenBatchRoutes } from './token-batches/routes.ts';
import { TokenBatches } from './token-batches/service.ts';
import { tokenRoutes } from './tokens/routes.ts';
import { networkTokenRoutes } from './network-tokens/routes.ts';
import type { NetworkTokens } from './network-tokens/service.ts';
import { TokenVault } from './tokens/service.ts';
import type { TokenStatements } from './tokens/statements.ts';

export interface VaultDeps {
  db: Db;
  log: Logger;
  keyring: TransportKeyring;
  merchantKeys: MerchantKeys;
  /** Seals each card under a key of its own (crypto-shredding). */
  cards: CardSealer;
  /** Seals CVCs under short-lived bucket keys. */
  cvcs: CvcKeys;
  /** Card-testing limits on declines. */
  declines: DeclineVelocity;
  /** Writes the tokenizations that arrive while one statement runs together (see `TokenStatements`). */
  tokenStatements?: TokenStatements | undefined;
  /** Re-encryption after a data key roll, and the move to a new master key. */
  dataKeyRotation: DataKeyRotation;
  masterKeyRewrap: MasterKeyRewrap;
  /** The sandbox acquirer, or a real acquirer's connector. */
  acquirer: Acquirer;
  adminKey: string;
  /** Seals stored idempotent responses that carry a key (under the master key). */
  responseSeal: ResponseSeal;
  ciphertextPolicy: CiphertextPolicy;
  rateLimits: { perIpPerMinute: number; perKeyPerMinute: number; authFailuresPerIpPerMinute: number };
  /** Express's `trust proxy`: `false`, a number of hops, or the addresses and subnets of trusted proxies. */
  trustProxy: TrustProxy;
  /** This process's `ProcessLiveness` id, which its Idempotency-Key claims carry. */
  processId: string;
  keyGraceSeconds: number;
  /** The built loader and fields bundle; without them the widget routes answer 503. */
  widget: WidgetAssets;
  /** Webhook endpoints; `allowLocal` is TESSERA_WEBHOOK_ALLOW_LOCAL. */
  webhooks: { endpoints: WebhookEndpoints; allowLocal: boolean };
  /** `TESSERA_PUBLIC_URL`'s origin: payment links' URLs; unset, each request's own origin. */
  publicOrigin: string | undefined;
  /** Requests being answered, which token batches step aside for. */
  requestsInFlight?: RequestsInFlight;
  /** Network tokens from the card networks' token services (the sandbox's). */
  networkTokens: NetworkTokens;
}

/** JSON bodies above this are refused (413); a card JWE is at most 8 KiB. */
const BODY_LIMIT_BYTES = 64 * 1024;
/**
 * `PATCH /v1/tokens` carries up to 1,000 card JWEs of about 500 bytes each
 * (about 0.5 MiB): this leaves room for bigger JWEs without letting one
 * request hold megabytes more than that.
 */
const BULK_BODY_LIMIT_BYTES = 4 * 1024 * 1024;
/** `POST /v1/token-batches`: up to 10,000 card JWEs (api.md). */
const TOKEN_BATCH_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

/** `POST /v1/payment-batches`: up to 10,000 operations of a few hundred bytes each, JSON or CSV. */
const PAYMENT_BATCH_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** The vault's HTTP application, without listening: tests and `main.ts` both start it. */
export function createApp(deps: VaultDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // Which peers may tell the client's address in X-Forwarded-For (TESSERA_TRUST_PROXY); by default none.
  app.set('trust proxy', deps.trustProxy);

  const merchants = new MerchantDirectory(deps.db, deps.merchantKeys);
  merchants.followChanges().catch((error: unknown) => deps.log.warn({ err: error }, 'not listening for merchant changes; cached merchants live their second'));
  const sessions = new FieldsSessions(deps.db);
  const audit = new AuditLog(deps.db);
  const tokens = new TokenVault({ ...deps, audit });
  const idempotency = new IdempotencyStore(deps.db, deps.processId);
  const payments = new PaymentService({ ...deps, audit });
  // Shared by every vault process on PostgreSQL (see windowCounters).
  const perMinute = (namespace: string) => windowCounters(deps.db, { namespace, windowMs: RATE_LIMIT_WINDOW_MS, alignment: 'clock' });
  const subscriptions = new SubscriptionService({ db: deps.db, audit });
  const limits = {
    perIp: new RateLimiter(perMinute('fields-ip'), deps.rateLimits.perIpPerMinute),
    perKey: new RateLimiter(perMinute('fields-key'), deps.rateLimits.perKeyPerMinute),
  };
  const authFailures = new AuthFailureThrottle({
    counters: windowCounters(deps.db, { namespace: 'auth-failures', windowMs: AUTH_FAILURE_WINDOW_MS, alignment: 'first-hit' }),
    limitPerWindow: deps.rateLimits.authFailuresPerIpPerMinute,
    db: deps.db,
    log: deps.log,
  });

  if (deps.requestsInFlight !== undefined) app.use(deps.requestsInFlight.middleware);
  app.use(requestLog(deps.log));
  app.use(wellFormedRequest());
  // Each router sees only the paths it has routes for (onItsPaths): a request skips the others unread.
  // The widget routes set their own headers (framing, CSP, CORS); everything else gets strict API headers.
  const links = new PaymentLinks({ db: deps.db, audit, payments });
  app.use(
    onItsPaths(
      healthRoutes(deps.db),
      fieldsRoutes({ widget: deps.widget, merchants, keyring: deps.keyring, limits, publicOrigin: deps.publicOrigin }),
      payPageRoutes({ links, merchants, widget: deps.widget, limits }),
    ),
  );
  app.use(helmet({ contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }));
  app.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  // The routes below take a key (in a header or the body), the public JWKS aside: an address that keeps
  // failing authentication is refused before any key is looked up.
  app.use(authFailures.guard);
  app.use(
    jsonBody(
      BODY_LIMIT_BYTES,
      { 'PATCH /v1/tokens': BULK_BODY_LIMIT_BYTES, 'POST /v1/token-batches': TOKEN_BATCH_BODY_LIMIT_BYTES, 'POST /v1/payment-batches': PAYMENT_BATCH_BODY_LIMIT_BYTES },
      { 'POST /v1/payment-batches': PAYMENT_BATCH_BODY_LIMIT_BYTES },
    ),
  );
  app.use(
    onItsPaths(
      keyRoutes({
        db: deps.db,
        keyring: deps.keyring,
        adminKey: deps.adminKey,
        defaultGraceSeconds: deps.keyGraceSeconds,
        idempotency,
        audit,
        dataKeyRotation: deps.dataKeyRotation,
        masterKeyRewrap: deps.masterKeyRewrap,
      }),
      merchantRoutes({ merchants, adminKey: deps.adminKey, idempotency, audit, responseSeal: deps.responseSeal }),
      sessionRoutes({ merchants, sessions, idempotency, limits, publicOrigin: deps.publicOrigin }),
      tokenRoutes({ tokens, merchants, idempotency, audit, limits, networkTokens: deps.networkTokens }),
      networkTokenRoutes({ networkTokens: deps.networkTokens, merchants, idempotency, requestsInFlight: deps.requestsInFlight }),
      paymentRoutes({ payments, merchants, idempotency }),
      paymentLinkRoutes({ links, merchants, idempotency, publicOrigin: deps.publicOrigin }),
      payLinkRoutes({ links, merchants, idempotency, limits }),
      paymentBatchRoutes({ batches: new PaymentBatches({ db: deps.db, audit }), merchants, idempotency, audit }),
      subscriptionRoutes({ subscriptions, merchants, idempotency }),
      sandboxRoutes({ db: deps.db, merchants, idempotency, audit }),
      tokenBatchRoutes({ batches: new TokenBatches({ db: deps.db, audit }), merchants, idempotency, audit }),
      webhookRoutes({
        endpoints: deps.webhooks.endpoints,
        merchants,
        idempotency,
        audit,
        responseSeal: deps.responseSeal,
        allowLocal: deps.webhooks.allowLocal,
      }),
      auditRoutes({ audit, merchants, adminKey: deps.adminKey }),
    ),
  );
  app.use(() => {
    throw new VaultError('not_found');
  });
  app.use(errorHandler(audit, authFailures));
  return app;
}
