import { Router } from 'express';
import { z } from 'zod';
import { failedAttempt } from './card-attempts.ts';
import { clientOf } from './client.ts';
import { newIdempotencyKey, newShopId, type Shop } from './context.ts';
import { fromVault, parseBody, ShopError } from './errors.ts';
import { PLANS, planById, secondPeriodStart, type Plan } from './plans.ts';
import { TokenName } from './shop-routes.ts';
import { unanswered, type VaultPayment } from './vault-client.ts';
import { VaultSubscriptions, type VaultSubscription } from './vault-subscriptions.ts';

const PlanId = z.string().max(64);
/** A new card from the fields in payment mode with the save box forced on: a reusable token for this account. */
const SubscribeBody = z.strictObject({ plan_id: PlanId, token: TokenName });
const SubscriptionId = z.string().regex(/^sub_[A-Za-z0-9]{1,64}$/);

/** A vault call that got no answer is sent again, same key and body, this many times. */
const TRIES = 3;

interface SubscriptionRow {
  id: string;
  user_id: string;
  plan_id: string;
  card_brand: string;
  card_last4: string;
}

/** A subscription as the shop's pages show it: the plan, the card, and where the vault's calendar stands. */
export function subscriptionView(row: SubscriptionRow, vault: VaultSubscription) {
  const plan = planById(row.plan_id);
  return {
    id: row.id,
    plan: plan?.name ?? row.plan_id,
    amount: vault.amount,
    currency: vault.currency,
    interval: vault.interval,
    status: vault.status,
    nextChargeAt: vault.next_charge_at,
    periodsPaid: vault.periods_paid,
    card: { brand: row.card_brand, last4: row.card_last4 },
    canceledAt: vault.canceled_at,
  };
}

/**
 * Plans bought by subscription. The checkout pays the first period with the
 * cardholder present and `setup_future_usage` (the card's stored credential),
 * then asks the vault for a subscription whose first charge is one interval
 * later: the vault charges it from then on, merchant-initiated. The card is
 * always saved (the fields' save box is forced on).
 */
export function subscriptionRoutes(shop: Shop): Router {
  const { db, vault, sessions, cardAttempts, log } = shop;
  const subscriptions = new VaultSubscriptions(vault);
  const router = Router();

  const requireUser = async (req: Parameters<typeof sessions.current>[0]) => {
    const session = await sessions.current(req);
    if (!session?.userId) throw new ShopError(401, 'signed_out', 'Please sign in to subscribe.');
    return { session, userId: session.userId };
  };
  const retried = async <T>(call: () => Promise<T>): Promise<T> => {
    for (let tries = 1; ; tries++) {
      try {
        return await call();
      } catch (error) {
        if (!unanswered(error) || tries >= TRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, 300 * tries));
      }
    }
  };

  router.get('/plans', (_req, res) => {
    res.json({ plans: PLANS });
  });

  router.post('/subscribe', async (req, res) => {
    const body = parseBody(SubscribeBody, req.body);
    const { session, userId } = await requireUser(req);
    const plan = planById(body.plan_id);
    if (plan === undefined) throw new ShopError(404, 'plan_not_found', 'This plan is not offered.');
    const scope = { sessionId: session.id, client: clientOf(req) };
    await cardAttempts.assertAllowed(db, scope);

    const { token } = body;
    const read = await vault.readToken(token).catch((error: unknown) => Promise.reject(fromVault(error, log)));
    // The fields were told to save the card for this account: anything else is not this shopper's card entry.
    if (!read.reusable || read.customer !== userId) throw new ShopError(422, 'card_not_saveable', 'This card entry cannot be used for a subscription. Please enter the card again.');

    const key = newIdempotencyKey('subscribe');
    const attemptId = await db.transaction((tx) => cardAttempts.record(tx, 'payment', scope));
    let first: VaultPayment;
    try {
      first = await retried(() =>
        vault.createPayment(
          { token, amount: plan.amount, currency: 'EUR', capture: true, reference: `${plan.id}-${userId}`, setup_future_usage: true, agreement: 'subscription' },
          `${key}-first`,
        ),
      );
    } catch (error) {
      const { outcome, declineCode } = failedAttempt(error);
      await cardAttempts.settle(db, attemptId, outcome);
      // A card saved for this subscription and declined would linger in the vault, on no account: remove it.
      if (outcome !== 'unknown') await vault.deleteToken(token).catch(() => undefined);
      if (declineCode !== null) throw new ShopError(402, 'card_declined', await cardAttempts.declineMessage(db, scope, declineCode));
      throw fromVault(error, log);
    }
    await cardAttempts.settle(db, attemptId, 'approved');
    const subscription = await startSubscription(plan, userId, token, `${key}-subscription`).catch(async (error: unknown) => {
      // Not subscribed after all: the first period's payment goes back.
      await vault.refund(first.id, `${key}-refund`).catch((refundError: unknown) => log.error({ err: refundError }, 'refunding a failed subscription’s first payment failed'));
      throw fromVault(error, log);
    });

    const row = { id: subscription.id, user_id: userId, plan_id: plan.id, card_brand: first.card.brand, card_last4: first.card.last4 };
    await db.transaction(async (tx) => {
      await tx.query(
        `insert into subscriptions (id, user_id, plan_id, token, first_payment_id, card_brand, card_last4) values ($1, $2, $3, $4, $5, $6, $7)`,
        [row.id, userId, plan.id, token, first.id, row.card_brand, row.card_last4],
      );
      const cardId = newShopId('card');
      await tx.query('insert into saved_cards (id, token, user_id) values ($1, $2, $3) on conflict (token) do nothing', [cardId, token, userId]);
      await tx.query('update users set default_card = coalesce(default_card, $2) where id = $1', [userId, cardId]);
    });
    res.status(201).json({ subscription: subscriptionView(row, subscription), firstPayment: { id: first.id, status: first.status, amount: first.amount, currency: first.currency } });
  });

  /** The vault's clock (the sandbox's, which the dashboard may have moved) says when "one interval later" is. */
  async function startSubscription(plan: Plan, userId: string, token: string, idempotencyKey: string): Promise<VaultSubscription> {
    const { now } = await retried(() => subscriptions.clock());
    const startAt = secondPeriodStart(new Date(now), plan);
    return retried(() =>
      subscriptions.create(
        { token, amount: plan.amount, currency: 'EUR', interval: plan.interval, interval_count: plan.intervalCount, start_at: startAt.toISOString(), reference: `${plan.id}-${userId}` },
        idempotencyKey,
      ),
    );
  }

  router.get('/subscriptions', async (req, res) => {
    const { userId } = await requireUser(req);
    const rows = (await db.query<SubscriptionRow>('select * from subscriptions where user_id = $1 order by created_at desc', [userId])).rows;
    const atVault = new Map((await subscriptions.ofCustomer(userId).catch((error: unknown) => Promise.reject(fromVault(error, log)))).map((s) => [s.id, s]));
    res.json({ subscriptions: rows.flatMap((row) => (atVault.has(row.id) ? [subscriptionView(row, atVault.get(row.id)!)] : [])) });
  });

  router.post('/subscriptions/:id/cancel', async (req, res) => {
    const { userId } = await requireUser(req);
    const id = parseBody(SubscriptionId, req.params['id']);
    const row = (await db.query<SubscriptionRow>('select * from subscriptions where id = $1 and user_id = $2', [id, userId])).rows[0];
    if (row === undefined) throw new ShopError(404, 'subscription_not_found', 'This subscription is not on your account.');
    const canceled = await subscriptions.cancel(id).catch((error: unknown) => Promise.reject(fromVault(error, log)));
    res.json({ subscription: subscriptionView(row, canceled) });
  });

  return router;
}
