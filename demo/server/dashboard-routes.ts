import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { clientOf } from './client.ts';
import { setting, shopIdPattern, type Shop } from './context.ts';
import { parseBody, ShopError } from './errors.ts';
import { orderView } from './shop-routes.ts';
import type { VaultPayment } from './vault-client.ts';

const Login = z.strictObject({ password: z.string().min(1).max(200) });
const Settings = z.strictObject({ captureAtCheckout: z.boolean().optional(), uniqueTokens: z.boolean().optional() });
const OrderId = z.string().regex(shopIdPattern('ord'));
/** How long the keys before the new one keep working, in seconds: the vault's own bounds (0 … 7 days). */
const KeyRoll = z.strictObject({ expiresIn: z.number().int().min(0).max(7 * 86400) });

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * The merchant's dashboard: orders with their payments, capture / void /
 * refund, the shop's capture setting and the vault's unique-tokens setting,
 * the secret key roll, and the vault's audit log. Everything goes through
 * this backend, which holds the secret key; the dashboard password starts a
 * dashboard session.
 */
export function dashboardRoutes(shop: Shop, dashboardPassword: string): Router {
  const { db, vault, sessions, logins, keyRolls } = shop;
  const router = Router();

  const requireDashboard = async (req: Request) => {
    if (!(await sessions.current(req))?.dashboard) throw new ShopError(401, 'dashboard_signed_out', 'Sign in to the dashboard first.');
  };

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
    await requireDashboard(req);
    const [payments, merchant, events, keyRoll] = await Promise.all([vault.recentPayments(), vault.merchant(), vault.events(), keyRolls.latest()]);
    const byId = new Map(payments.map((payment) => [payment.id, payment]));
    const orders = (await db.query<Parameters<typeof orderView>[0] & { email: string | null }>(
      `select orders.*, users.email from orders left join users on users.id = orders.user_id
        where orders.attempts > 0 order by orders.created_at desc limit 50`,
    )).rows;
    res.json({
      settings: { captureAtCheckout: await setting<boolean>(db, 'capture_at_checkout'), uniqueTokens: merchant.unique_tokens },
      orders: orders.map((order) => ({ ...orderView(order), customer: order.email ?? 'guest', payment: paymentView(byId.get(order.payment_id ?? '')) })),
      payments: payments.map(paymentView),
      keyRoll,
      events,
    });
  });

  router.patch('/settings', async (req, res) => {
    await requireDashboard(req);
    const changes = parseBody(Settings, req.body);
    if (changes.captureAtCheckout !== undefined) {
      await db.query(`update settings set value = $1 where name = 'capture_at_checkout'`, [JSON.stringify(changes.captureAtCheckout)]);
    }
    const merchant = changes.uniqueTokens === undefined ? await vault.merchant() : await vault.updateMerchant({ unique_tokens: changes.uniqueTokens });
    res.json({ captureAtCheckout: await setting<boolean>(db, 'capture_at_checkout'), uniqueTokens: merchant.unique_tokens });
  });

  // The new key stays in this process and its data folder: the answer says only when the keys before it stop working.
  router.post('/keys/roll', async (req, res) => {
    await requireDashboard(req);
    const { expiresIn } = parseBody(KeyRoll, req.body);
    res.status(201).json({ keyRoll: await keyRolls.roll(expiresIn) });
  });

  // One key per payment and action: a double click or a retry does it once (a second refund would need another key).
  for (const action of ['capture', 'void', 'refund'] as const) {
    router.post(`/orders/:id/${action}`, async (req, res) => {
      await requireDashboard(req);
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
