import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import QRCode from 'qrcode';
import { z } from 'zod';
import { clientOf } from './client.ts';
import { idempotencyKeyFor, newIdempotencyKey, setting, shopIdPattern, type Shop } from './context.ts';
import { fromVault, parseBody, ShopError } from './errors.ts';
import { orderView } from './shop-routes.ts';
import { VaultRequestError, type VaultPayment, type VaultPaymentLink, type VaultToken, type VaultWebhookDelivery, type VaultWebhookEndpoint } from './vault-client.ts';

const Login = z.strictObject({ password: z.string().min(1).max(200) });
const Settings = z.strictObject({ captureAtCheckout: z.boolean().optional(), uniqueTokens: z.boolean().optional(), networkTokens: z.boolean().optional() });
const NetworkTokenId = z.string().regex(/^ntok_[A-Za-z0-9]{1,64}$/);
/** The issuer-side changes the dashboard drives in the sandbox; `reissue` is a new expiry from the issuer (pan_update). */
const Lifecycle = z.strictObject({ event: z.enum(['suspend', 'resume', 'delete', 'reissue']) });
/** How many saved cards the dashboard lists. */
const SAVED_CARDS_SHOWN = 50;
const OrderId = z.string().regex(shopIdPattern('ord'));
/** How long the keys before the new one keep working, in seconds: the vault's own bounds (0 … 7 days). */
const KeyRoll = z.strictObject({ expiresIn: z.number().int().min(0).max(7 * 86400) });
const DeliveryId = z.string().regex(/^whd_[A-Za-z0-9]{1,64}$/);
/** A link to pay: an amount in cents (the shop's currency), what it is for, and who it is for (the shop sends nothing itself). */
const NewLink = z.strictObject({
  amount: z.number().int().min(50).max(1_000_000),
  description: z.string().trim().min(1).max(200),
  customerEmail: z.email().max(254).optional(),
  /** The page's own key for this submission: a double click makes one link. */
  requestId: z.uuid(),
});
const LinkId = z.string().regex(/^plink_[A-Za-z0-9]{1,64}$/);
const BatchId = z.string().regex(/^pbat_[A-Za-z0-9]{1,64}$/);
/** How many of the latest deliveries the dashboard shows. */
const DELIVERIES_SHOWN = 20;

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * The merchant's dashboard: orders with their payments, capture / void /
 * refund, the shop's capture setting and the vault's unique-tokens setting,
 * the secret key roll, the webhook deliveries (with Resend), and the vault's
 * audit log. Everything goes through
 * this backend, which holds the secret key; the dashboard password starts a
 * dashboard session.
 */
export function dashboardRoutes(shop: Shop, dashboardPassword: string): Router {
  const { db, vault, sessions, logins, keyRolls, webhookEndpoint, log } = shop;
  const router = Router();

  router.post('/login', async (req, res) => {
    const { password } = parseBody(Login, req.body);
    const client = clientOf(req);
    // The lockout is per client here, never for the dashboard as a whole: anyone could otherwise lock the merchant out.
    // Digests have one length, so the comparison takes the same time whatever was typed.
    const signedIn = await logins.signIn({ account: `dashboard:${client}`, client }, async () => timingSafeEqual(digest(password), digest(dashboardPassword)));
    if (!signedIn) throw new ShopError(401, 'wrong_password', 'That is not the dashboard password.');
    const current = await sessions.current(req);
    await sessions.start(req, res, { userId: current?.userId ?? null, dashboard: true });
    res.json({ ok: true });
  });

  router.get('/', async (req, res) => {
    await sessions.requireDashboard(req);
    const [payments, merchant, events, keyRoll] = await Promise.all([vault.recentPayments(), vault.merchant(), vault.events(), keyRolls.latest()]);
    const byId = new Map(payments.map((payment) => [payment.id, payment]));
    const orders = (await db.query<Parameters<typeof orderView>[0] & { email: string | null }>(
      `select orders.*, users.email from orders left join users on users.id = orders.user_id
        where orders.attempts > 0 order by orders.created_at desc limit 50`,
    )).rows;
    const saved = (await db.query<{ token: string; email: string }>(
      `select saved_cards.token, users.email from saved_cards join users on users.id = saved_cards.user_id order by saved_cards.created_at desc limit $1`,
      [SAVED_CARDS_SHOWN],
    )).rows;
    // One page of the vault's newest tokens, not a read per card; a card it no longer has (deleted elsewhere) is left out.
    const tokens = saved.length === 0 ? new Map<string, VaultToken>() : new Map((await vault.recentTokens()).map((token) => [token.token, token]));
    const savedCards = saved.flatMap((row) => {
      const token = tokens.get(row.token);
      if (token === undefined) return [];
      const nt = token.network_token ?? null;
      return [
        {
          customer: row.email,
          card: { brand: token.card.brand, last4: token.card.last4, expMonth: token.card.exp_month, expYear: token.card.exp_year },
          networkToken: nt && { id: nt.id, network: nt.network, status: nt.status, cardArtId: nt.card_art_id },
        },
      ];
    });
    res.json({
      settings: {
        captureAtCheckout: await setting<boolean>(db, 'capture_at_checkout'),
        uniqueTokens: merchant.unique_tokens,
        networkTokens: merchant.network_tokens,
      },
      savedCards,
      orders: orders.map((order) => ({ ...orderView(order), customer: order.email ?? 'guest', payment: paymentView(byId.get(order.payment_id ?? '')) })),
      payments: payments.map(paymentView),
      keyRoll,
      events,
    });
  });

  router.patch('/settings', async (req, res) => {
    await sessions.requireDashboard(req);
    const changes = parseBody(Settings, req.body);
    if (changes.captureAtCheckout !== undefined) {
      await db.query(`update settings set value = $1 where name = 'capture_at_checkout'`, [JSON.stringify(changes.captureAtCheckout)]);
    }
    const vaultChanges = {
      ...(changes.uniqueTokens === undefined ? {} : { unique_tokens: changes.uniqueTokens }),
      ...(changes.networkTokens === undefined ? {} : { network_tokens: changes.networkTokens }),
    };
    const merchant = Object.keys(vaultChanges).length === 0 ? await vault.merchant() : await vault.updateMerchant(vaultChanges);
    res.json({
      captureAtCheckout: await setting<boolean>(db, 'capture_at_checkout'),
      uniqueTokens: merchant.unique_tokens,
      networkTokens: merchant.network_tokens,
    });
  });

  // The sandbox lets the merchant play the issuer: each click is one change at the card network, which the vault follows.
  router.post('/network-tokens/:id/lifecycle', async (req, res) => {
    await sessions.requireDashboard(req);
    const id = parseBody(NetworkTokenId, req.params['id']);
    const { event } = parseBody(Lifecycle, req.body);
    const change = event === 'reissue' ? { event: 'pan_update', exp_month: 12, exp_year: new Date().getUTCFullYear() + 5 } : { event };
    try {
      const updated = await vault.networkTokenLifecycle(id, change, newIdempotencyKey(`lifecycle-${id}`));
      res.json({ networkToken: { id: updated.id, network: updated.network, status: updated.status, cardArtId: updated.card_art_id } });
    } catch (error) {
      if (error instanceof VaultRequestError && error.code === 'network_token_unavailable') {
        throw new ShopError(422, 'network_token_unavailable', 'The card network has no token left to change (it was deleted).');
      }
      throw fromVault(error, log);
    }
  });

  // The new key stays in this process and its data folder: the answer says only when the keys before it stop working.
  router.post('/keys/roll', async (req, res) => {
    await sessions.requireDashboard(req);
    const { expiresIn } = parseBody(KeyRoll, req.body);
    res.status(201).json({ keyRoll: await keyRolls.roll(expiresIn) });
  });

  /**
   * The shop's webhook endpoint and its latest deliveries as the vault
   * records them (each attempt's time, status code and error), with what the
   * shop did with each event it stored. Never the endpoint's secret.
   */
  router.get('/webhooks', async (req, res) => {
    await sessions.requireDashboard(req);
    const endpointId = webhookEndpoint.id;
    if (endpointId === undefined) {
      res.json({ url: webhookEndpoint.url, endpoint: null, deliveries: [], problem: 'not_registered' });
      return;
    }
    let endpoint: VaultWebhookEndpoint | undefined;
    let deliveries: VaultWebhookDelivery[];
    try {
      [endpoint, deliveries] = await Promise.all([
        vault.webhookEndpoints().then((all) => all.find((one) => one.id === endpointId)),
        vault.webhookDeliveries(endpointId, DELIVERIES_SHOWN),
      ]);
    } catch (error) {
      if (!(error instanceof VaultRequestError && error.code === 'webhook_endpoint_not_found')) throw fromVault(error, log);
      res.json({ url: webhookEndpoint.url, endpoint: null, deliveries: [], problem: 'deleted' });
      return;
    }
    const stored = new Map(
      (
        await db.query<{ id: string; effect: string | null; received_at: Date }>('select id, effect, received_at from webhook_events where id = any($1)', [
          deliveries.map((delivery) => delivery.event),
        ])
      ).rows.map((row) => [row.id, row]),
    );
    res.json({
      url: webhookEndpoint.url,
      endpoint: endpoint && { id: endpoint.id, url: endpoint.url, events: endpoint.events, disabled: endpoint.disabled, disabledReason: endpoint.disabled_reason },
      deliveries: deliveries.map((delivery) => {
        const event = stored.get(delivery.event);
        return {
          id: delivery.id,
          event: delivery.event,
          eventType: delivery.event_type,
          state: delivery.state,
          createdAt: delivery.created_at,
          nextAttemptAt: delivery.next_attempt_at,
          attempts: delivery.attempts.map((attempt) => ({
            attempt: attempt.attempt,
            attemptedAt: attempt.attempted_at,
            statusCode: attempt.status_code,
            latencyMs: attempt.latency_ms,
            error: attempt.error,
          })),
          received: event === undefined ? null : { at: event.received_at.toISOString(), effect: event.effect },
        };
      }),
      problem: null,
    });
  });

  // Every click is a resend: the vault sends the event again now, with the same webhook-id, and the shop's receiver changes nothing twice.
  router.post('/webhooks/deliveries/:id/resend', async (req, res) => {
    await sessions.requireDashboard(req);
    const id = parseBody(DeliveryId, req.params['id']);
    try {
      await vault.retryWebhookDelivery(id, newIdempotencyKey(`resend-${id}`));
    } catch (error) {
      if (error instanceof VaultRequestError && error.code === 'webhook_delivery_not_found') {
        throw new ShopError(404, 'delivery_not_found', 'The vault has no such delivery any more. Reload the dashboard.');
      }
      throw fromVault(error, log);
    }
    res.status(202).json({ delivery: { id, state: 'pending' } });
  });

  router.get('/links', async (req, res) => {
    await sessions.requireDashboard(req);
    res.json({ links: await Promise.all((await vault.paymentLinks()).map(linkView)) });
  });

  router.post('/links', async (req, res) => {
    await sessions.requireDashboard(req);
    const input = parseBody(NewLink, req.body);
    const link = await vault
      .createPaymentLink(
        { amount: input.amount, currency: 'EUR', description: input.description, ...(input.customerEmail === undefined ? {} : { customer_email: input.customerEmail }) },
        idempotencyKeyFor('link', input.requestId),
      )
      .catch((error: unknown) => {
        throw fromVault(error, log);
      });
    res.status(201).json({ link: await linkView(link) });
  });

  router.post('/links/:id/expire', async (req, res) => {
    await sessions.requireDashboard(req);
    const id = parseBody(LinkId, req.params['id']);
    res.json({ link: await linkView(await vault.expirePaymentLink(id, `expire-${id}`)) });
  });

  // One batch for every authorized payment of an order; the dashboard follows it.
  router.post('/orders/capture-all', async (req, res) => {
    await sessions.requireDashboard(req);
    const { rows } = await db.query<{ id: string; payment_id: string }>('select id, payment_id from orders where payment_id is not null');
    const orderOf = new Map(rows.map((row) => [row.payment_id, row.id]));
    const authorized = (await vault.recentPayments()).filter((payment) => payment.status === 'authorized' && orderOf.has(payment.id));
    if (authorized.length === 0) throw new ShopError(409, 'nothing_to_capture', 'No order is waiting for a capture.');
    const batchKey = newIdempotencyKey('capture-all');
    const batch = await vault.createPaymentBatch(
      { correlation_id: `capture-all-${batchKey}`, items: authorized.map((payment) => ({ op: 'capture', payment: payment.id, reference: orderOf.get(payment.id)! })) },
      `capture-all-${batchKey}`,
    );
    res.status(202).json({ batch });
  });

  router.get('/batches/:id', async (req, res) => {
    await sessions.requireDashboard(req);
    const id = parseBody(BatchId, req.params['id']);
    const batch = await vault.paymentBatch(id);
    if (batch.status !== 'completed') return void res.json({ batch, results: [] });
    const results = await vault.paymentBatchResults(id);
    // The webhooks say so too; the shop need not wait for them to show what the batch did.
    for (const result of results) {
      if (result.ok && result.payment !== undefined && result.status) await db.query('update orders set status = $2, updated_at = now() where payment_id = $1', [result.payment, result.status]);
    }
    res.json({ batch, results: results.map((r) => ({ order: r.reference, ok: r.ok, status: r.status ?? null, error: r.error?.message ?? null })) });
  });

  // One key per payment and action: a double click or a retry does it once (a second refund would need another key).
  for (const action of ['capture', 'void', 'refund'] as const) {
    router.post(`/orders/:id/${action}`, async (req, res) => {
      await sessions.requireDashboard(req);
      const id = parseBody(OrderId, req.params['id']);
      const { rows } = await db.query<{ payment_id: string | null }>('select payment_id from orders where id = $1', [id]);
      const paymentId = rows[0]?.payment_id;
      if (!paymentId) throw new ShopError(404, 'order_not_found', 'No paid order with this id.');
      const payment = await vault[action](paymentId, `${paymentId}-${action}`);
      await db.query('update orders set status = $2, updated_at = now() where id = $1', [id, payment.status]);
      res.json({ payment: paymentView(payment) });
    });
  }

  return router;
}

/** A link as the dashboard shows it, with a QR code of its address (an SVG made by the qrcode library, as a data URL). */
async function linkView(link: VaultPaymentLink) {
  const svg = await QRCode.toString(link.url, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
  return {
    id: link.id,
    url: link.url,
    status: link.status,
    amount: link.amount,
    currency: link.currency,
    description: link.description,
    customerEmail: link.customer_email,
    paymentsCount: link.payments_count,
    expiresAt: link.expires_at,
    qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
  };
}

const paymentView = (payment: VaultPayment | undefined) =>
  payment && {
    id: payment.id,
    status: payment.status,
    amount: payment.amount,
    currency: payment.currency,
    amountCaptured: payment.amount_captured,
    amountRefunded: payment.amount_refunded,
    card: payment.card,
    reference: payment.reference,
    declineCode: payment.decline_code,
    createdAt: payment.created_at,
  };
