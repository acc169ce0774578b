import { Router } from 'express';
import { z } from 'zod';
import { newShopId, type Shop } from './context.ts';
import { fromVault, parseBody } from './errors.ts';
import { orderView } from './shop-routes.ts';
import { subscriptionView } from './subscription-routes.ts';
import type { VaultPayment } from './vault-client.ts';
import { VaultSubscriptions } from './vault-subscriptions.ts';

const Jump = z.strictObject({ months: z.number().int().min(1).max(12) });
/** What the agent typed for a phone order: the description is stored in the clear, so it may not hold a long run of digits. */
const PhoneOrder = z.strictObject({
  token: z.string().regex(/^tok_[A-Za-z0-9]{1,64}$/),
  amount: z.number().int().min(50).max(1_000_000),
  description: z
    .string()
    .trim()
    .min(1)
    .max(80)
    .refine((text) => !/\d[\d -]{10,}\d/.test(text)),
});

const paymentLine = (payment: VaultPayment) => ({
  id: payment.id,
  status: payment.status,
  amount: payment.amount,
  currency: payment.currency,
  card: payment.card,
  reference: payment.reference,
  declineCode: payment.decline_code,
  channel: payment.channel ?? 'ecommerce',
  subscription: payment.subscription ?? null,
  createdAt: payment.created_at,
});

/** The same month day, `months` later, clamped to the month's end. */
function monthsLater(from: Date, months: number): Date {
  const next = new Date(from);
  const day = next.getUTCDate();
  next.setUTCDate(1);
  next.setUTCMonth(next.getUTCMonth() + months);
  next.setUTCDate(Math.min(day, new Date(Date.UTC(next.getUTCFullYear(), next.getUTCMonth() + 1, 0)).getUTCDate()));
  return next;
}

/**
 * The dashboard's subscriptions (with the vault's sandbox clock, which
 * "Jump 1 month" moves forward so the charges due by then run now) and its
 * phone orders, keyed in by the merchant's agent in the fields' moto mode
 * and charged as MOTO payments.
 */
export function dashboardSubscriptionRoutes(shop: Shop): Router {
  const { db, vault, sessions, log } = shop;
  const subscriptions = new VaultSubscriptions(vault);
  const router = Router();
  const atVault = <T>(call: Promise<T>) => call.catch((error: unknown) => Promise.reject(fromVault(error, log)));

  router.get('/subscriptions', async (req, res) => {
    await sessions.requireDashboard(req);
    const [clock, list, payments] = await Promise.all([atVault(subscriptions.clock()), atVault(subscriptions.recent()), atVault(vault.recentPayments())]);
    const rows = new Map(
      (
        await db.query<{ id: string; user_id: string; plan_id: string; card_brand: string; card_last4: string; email: string }>(
          'select subscriptions.*, users.email from subscriptions join users on users.id = subscriptions.user_id',
        )
      ).rows.map((row) => [row.id, row]),
    );
    res.json({
      clock,
      subscriptions: list.flatMap((s) => (rows.has(s.id) ? [{ ...subscriptionView(rows.get(s.id)!, s), customer: rows.get(s.id)!.email }] : [])),
      charges: payments.filter((payment) => payment.subscription).map(paymentLine),
    });
  });

  router.post('/clock/jump', async (req, res) => {
    await sessions.requireDashboard(req);
    const { months } = parseBody(Jump, req.body);
    const [before, earlier] = await Promise.all([atVault(subscriptions.clock()), atVault(vault.recentPayments())]);
    const to = monthsLater(new Date(before.now), months);
    const after = await atVault(subscriptions.advanceClock(to, `jump-${to.toISOString()}`));
    // The charges the jump made: subscription payments the vault did not list before it.
    const seen = new Set(earlier.map((payment) => payment.id));
    const made = (await atVault(vault.recentPayments())).filter((payment) => payment.subscription && !seen.has(payment.id));
    res.json({ from: before.now, clock: after, charges: made.map(paymentLine) });
  });

  router.post('/phone-orders', async (req, res) => {
    await sessions.requireDashboard(req);
    const body = parseBody(PhoneOrder, req.body);
    const items = [{ product_id: 'phone-order', name: body.description, quantity: 1, amount: body.amount }];
    const id = newShopId('ord');
    await db.query(`insert into orders (id, items, amount, currency, status, attempts) values ($1, $2, $3, 'EUR', 'awaiting_payment', 1)`, [
      id,
      JSON.stringify(items),
      body.amount,
    ]);
    let payment: VaultPayment;
    try {
      payment = await vault.createPayment({ token: body.token, amount: body.amount, currency: 'EUR', capture: true, reference: id, channel: 'moto' }, `${id}-1`);
    } catch (error) {
      await db.query(`update orders set status = 'failed', updated_at = now() where id = $1`, [id]);
      throw fromVault(error, log);
    }
    const { rows } = await db.query<Parameters<typeof orderView>[0]>(
      `update orders set status = $2, payment_id = $3, card_brand = $4, card_last4 = $5, updated_at = now() where id = $1 returning *`,
      [id, payment.status, payment.id, payment.card.brand, payment.card.last4],
    );
    res.status(201).json({ order: orderView(rows[0]!), payment: paymentLine(payment) });
  });

  return router;
}
