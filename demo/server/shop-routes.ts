import { Router } from 'express';
import { z } from 'zod';
import { failedAttempt } from './card-attempts.ts';
import { CATALOG, CURRENCY, productById } from './catalog.ts';
import { clientOf } from './client.ts';
import { newShopId, setting, shopIdPattern, type Shop } from './context.ts';
import type { ShopQueryable } from './db.ts';
import { fromVault, parseBody, ShopError } from './errors.ts';
import type { Session } from './sessions.ts';
import { unanswered, type VaultPayment } from './vault-client.ts';

/** Token names come from the card fields; anything else never reaches a vault URL or body. */
export const TokenName = z.string().regex(/^tok_[A-Za-z0-9]{1,64}$/);
/** The CVC handle from the fields in cvc mode: a compact JWE, passed to the vault as it came. */
const CvcHandle = z.string().max(8192).regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/);

const CartChange = z.strictObject({ product_id: z.string().max(64), quantity: z.number().int().min(0).max(20) });
const CheckoutBody = z.union([
  z.strictObject({ token: TokenName }),
  z.strictObject({ saved_card: z.string().regex(shopIdPattern('card')), cvc: CvcHandle }),
]);

/** A payment call that got no answer (network, 502 acquirer_error, in flight) is sent again, same key and body, this many times. */
const PAYMENT_TRIES = 3;
const RETRY_DELAY_MS = 300;

interface CartLine {
  product_id: string;
  name: string;
  quantity: number;
  amount: number;
}

interface OrderRow {
  id: string;
  session_id: string | null;
  user_id: string | null;
  items: CartLine[];
  amount: number;
  currency: string;
  status: string;
  payment_id: string | null;
  card_brand: string | null;
  card_last4: string | null;
  card_saved: boolean;
  attempts: number;
  created_at: Date;
}

export const orderView = (order: OrderRow) => ({
  id: order.id,
  status: order.status,
  amount: order.amount,
  currency: order.currency,
  items: order.items,
  card: order.card_brand === null ? null : { brand: order.card_brand, last4: order.card_last4 },
  cardSaved: order.card_saved,
  createdAt: order.created_at.toISOString(),
});

export async function cartLines(q: ShopQueryable, sessionId: string | undefined): Promise<CartLine[]> {
  if (sessionId === undefined) return [];
  const { rows } = await q.query<{ product_id: string; quantity: number }>(
    'select product_id, quantity from cart_items where session_id = $1 order by product_id',
    [sessionId],
  );
  return rows.flatMap((row) => {
    const product = productById(row.product_id);
    return product ? [{ product_id: product.id, name: product.name, quantity: row.quantity, amount: product.unitAmount * row.quantity }] : [];
  });
}

const cartView = (lines: CartLine[]) => ({
  currency: CURRENCY,
  items: lines,
  count: lines.reduce((n, line) => n + line.quantity, 0),
  total: lines.reduce((sum, line) => sum + line.amount, 0),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Catalog, cart, checkout. */
export function shopRoutes(shop: Shop): Router {
  const { db, vault, sessions, cardAttempts, log } = shop;
  const router = Router();
  /** Orders being paid right now: one payment at a time per cart, so a double submit cannot pay twice. */
  const paying = new Set<string>();

  router.get('/catalog', (_req, res) => {
    res.json({ currency: CURRENCY, products: CATALOG });
  });

  router.get('/cart', async (req, res) => {
    res.json(cartView(await cartLines(db, (await sessions.current(req))?.id)));
  });

  router.post('/cart', async (req, res) => {
    const change = parseBody(CartChange, req.body);
    if (!productById(change.product_id)) throw new ShopError(404, 'product_not_found', 'This product is not in the catalog.');
    const session = await sessions.currentOrNew(req, res);
    if (change.quantity === 0) {
      await db.query('delete from cart_items where session_id = $1 and product_id = $2', [session.id, change.product_id]);
    } else {
      await db.query(
        `insert into cart_items (session_id, product_id, quantity) values ($1, $2, $3)
         on conflict (session_id, product_id) do update set quantity = excluded.quantity`,
        [session.id, change.product_id, change.quantity],
      );
    }
    res.json(cartView(await cartLines(db, session.id)));
  });

  /**
   * Pays for the cart. The order is made on the first try and kept while it
   * waits for payment, so a decline and a retry with another card are two
   * attempts on one order (`reference` = the order id at the vault), each
   * with its own Idempotency-Key `<order>-<attempt>`. Attempts are limited
   * per order, session and client (`CardAttempts`); past a limit the answer
   * is 429 and nothing, the vault included, is asked.
   */
  router.post('/checkout', async (req, res) => {
    const body = parseBody(CheckoutBody, req.body);
    const session = await sessions.current(req);
    if (!session) throw new ShopError(409, 'cart_empty', 'Your cart is empty.');
    if (paying.has(session.id)) throw new ShopError(409, 'checkout_in_progress', 'Your payment is already being processed.');
    paying.add(session.id);
    try {
      const paid = await paidByWebhook(db, session.id);
      if (paid !== undefined) {
        res.status(201).json({ order: orderView(paid) });
        return;
      }
      const lines = await cartLines(db, session.id);
      if (lines.length === 0) throw new ShopError(409, 'cart_empty', 'Your cart is empty.');
      res.status(201).json({ order: orderView(await checkout(session, clientOf(req), lines, body)) });
    } finally {
      paying.delete(session.id);
    }
  });

  /**
   * An order of this session that a `payment.*` webhook paid after the
   * shopper's checkout got no answer (webhook-events.ts leaves it its
   * session until then): the shopper's next "Pay" shows it paid, once,
   * instead of charging for the cart again.
   */
  async function paidByWebhook(q: ShopQueryable, sessionId: string): Promise<OrderRow | undefined> {
    const { rows } = await q.query<OrderRow>(
      `update orders set session_id = null, updated_at = now()
        where session_id = $1 and status in ('authorized', 'captured') returning *`,
      [sessionId],
    );
    return rows[0];
  }

  async function checkout(session: Session, client: string, lines: CartLine[], body: z.output<typeof CheckoutBody>): Promise<OrderRow> {
    const amount = lines.reduce((sum, line) => sum + line.amount, 0);
    const unpaid = (await db.query<{ id: string }>(`select id from orders where session_id = $1 and status = 'awaiting_payment'`, [session.id])).rows[0];
    await cardAttempts.assertAllowed(db, { orderId: unpaid?.id, sessionId: session.id, client });

    // One transaction with the check, as the webhook's is one with its update: a webhook that paid the order since the
    // route looked is seen here, and the order is shown, not made again and charged twice.
    const found = await db.transaction(async (tx) => {
      const paid = await paidByWebhook(tx, session.id);
      if (paid !== undefined) return { order: paid, paidByWebhook: true };
      const updated = (
        await tx.query<OrderRow>(
          `update orders set items = $2, amount = $3, user_id = $4, updated_at = now()
            where session_id = $1 and status = 'awaiting_payment' returning *`,
          [session.id, JSON.stringify(lines), amount, session.userId],
        )
      ).rows[0];
      const order =
        updated ??
        (
          await tx.query<OrderRow>(
            `insert into orders (id, session_id, user_id, items, amount, currency, status)
             values ($1, $2, $3, $4, $5, $6, 'awaiting_payment') returning *`,
            [newShopId('ord'), session.id, session.userId, JSON.stringify(lines), amount, CURRENCY],
          )
        ).rows[0]!;
      return { order, paidByWebhook: false };
    });
    const { order } = found;
    if (found.paidByWebhook) return order;

    // An earlier attempt whose answer never came may have been approved: ask the vault before charging again.
    // Still `sent` means the shop stopped while it waited (one payment at a time per cart, so none is under way now).
    if ((await db.query(`select 1 from payment_attempts where order_id = $1 and outcome in ('unknown', 'sent')`, [order.id])).rows.length > 0) {
      const approved = (await vault.paymentsFor(order.id).catch((error: unknown) => Promise.reject(fromVault(error, log)))).find(
        (payment) => payment.status !== 'declined',
      );
      if (approved) return settle(order, approved, undefined);
      await db.query(`update payment_attempts set outcome = 'failed' where order_id = $1 and outcome in ('unknown', 'sent')`, [order.id]);
    }

    let token: string;
    let cvc: string | undefined;
    let saveFor: string | undefined;
    if ('saved_card' in body) {
      const { rows } = await db.query<{ token: string }>('select token from saved_cards where id = $1 and user_id = $2', [
        body.saved_card,
        session.userId ?? '',
      ]);
      if (!rows[0]) throw new ShopError(404, 'card_not_found', 'This card is not saved on your account.');
      token = rows[0].token;
      cvc = body.cvc;
    } else {
      token = body.token;
      const read = await vault.readToken(token).catch((error: unknown) => Promise.reject(fromVault(error, log)));
      // Saved only when the shopper ticked "save" (a reusable token) on their own account, as the fields were told.
      const saved = await db.query<{ user_id: string }>('select user_id from saved_cards where token = $1', [token]);
      // Another account's saved card is not a card entry this shopper made.
      if (saved.rows[0] && saved.rows[0].user_id !== session.userId) throw new ShopError(404, 'card_not_found', 'Please enter the card again.');
      if (read.reusable && session.userId !== null && read.customer === session.userId && !saved.rows[0]) saveFor = session.userId;
    }

    const attempt = order.attempts + 1;
    const scope = { orderId: order.id, sessionId: session.id, client };
    const attemptId = await db.transaction(async (tx) => {
      const id = await cardAttempts.record(tx, 'payment', scope);
      await tx.query('update orders set attempts = $2 where id = $1', [order.id, attempt]);
      await tx.query(`insert into payment_attempts (order_id, attempt, token, outcome) values ($1, $2, $3, 'sent')`, [order.id, attempt, token]);
      return id;
    });
    const captureAtCheckout = await setting<boolean>(db, 'capture_at_checkout');
    try {
      const payment = await payWithRetries(
        { token, amount: order.amount, currency: order.currency, capture: captureAtCheckout, reference: order.id, cvc },
        `${order.id}-${attempt}`,
      );
      await db.query('update payment_attempts set outcome = $3, payment_id = $4 where order_id = $1 and attempt = $2', [
        order.id,
        attempt,
        payment.status,
        payment.id,
      ]);
      await cardAttempts.settle(db, attemptId, 'approved');
      return settle(order, payment, saveFor);
    } catch (error) {
      const { outcome, declineCode } = failedAttempt(error);
      await db.query('update payment_attempts set outcome = $3, decline_code = $4 where order_id = $1 and attempt = $2', [
        order.id,
        attempt,
        outcome === 'unknown' || outcome === 'declined' ? outcome : 'failed',
        declineCode,
      ]);
      await cardAttempts.settle(db, attemptId, outcome);
      // A card saved for this purchase and declined would linger in the vault, on no account: remove it.
      if (saveFor !== undefined && outcome !== 'unknown') await vault.deleteToken(token).catch(() => undefined);
      if (declineCode !== null) throw new ShopError(402, 'card_declined', await cardAttempts.declineMessage(db, scope, declineCode));
      throw fromVault(error, log);
    }
  }

  /** `POST /v1/payments`, sent again with the same key and body while no answer comes (the vault makes that safe). */
  async function payWithRetries(payment: Parameters<typeof vault.createPayment>[0], idempotencyKey: string): Promise<VaultPayment> {
    for (let tries = 1; ; tries++) {
      try {
        return await vault.createPayment(payment, idempotencyKey);
      } catch (error) {
        if (!unanswered(error) || tries >= PAYMENT_TRIES) throw error;
        log.warn({ idempotency_key: idempotencyKey, tries }, 'payment unanswered; sending it again');
        await sleep(RETRY_DELAY_MS * tries);
      }
    }
  }

  /** The order is paid (or authorized): record it, empty the cart, and keep the card if the shopper asked. */
  async function settle(order: OrderRow, payment: VaultPayment, saveFor: string | undefined): Promise<OrderRow> {
    return db.transaction(async (tx) => {
      if (saveFor !== undefined) {
        const cardId = newShopId('card');
        await tx.query('insert into saved_cards (id, token, user_id) values ($1, $2, $3) on conflict (token) do nothing', [cardId, payment.token, saveFor]);
        await tx.query('update users set default_card = coalesce(default_card, $2) where id = $1', [saveFor, cardId]);
      }
      await tx.query('delete from cart_items where session_id = $1', [order.session_id]);
      const { rows } = await tx.query<OrderRow>(
        `update orders set status = $2, payment_id = $3, card_brand = $4, card_last4 = $5, card_saved = $6, session_id = null, updated_at = now()
          where id = $1 returning *`,
        [order.id, payment.status, payment.id, payment.card.brand, payment.card.last4, saveFor !== undefined],
      );
      return rows[0]!;
    });
  }

  return router;
}
