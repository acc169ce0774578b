import { z } from 'zod';
import { shopIdPattern } from './context.ts';
import type { ShopDb, ShopQueryable } from './db.ts';
import { PaymentSchema, type VaultPayment } from './vault-client.ts';

/** A vault event as its webhook carries it (api.md, "Events and webhooks"); fields the shop does not use may come too. */
export const TesseraEventSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  object: z.literal('event'),
  type: z.string().min(1).max(64),
  created_at: z.iso.datetime({ offset: true }),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type TesseraEvent = z.infer<typeof TesseraEventSchema>;

/** What the shop did with an event: stored it (once), and what it changed, if anything. */
export interface ReceivedEvent {
  /** Already stored by an earlier delivery: nothing was done this time. */
  duplicate: boolean;
  effect: string | null;
}

/**
 * How far along its life an order's payment is. An event moves an order
 * forward only, since deliveries come at least once and in no set order: a
 * late `payment.authorized` must not undo the `payment.captured` before it,
 * nor a webhook what the shop recorded from the vault's own answer.
 */
const PROGRESS: Readonly<Record<string, number>> = {
  awaiting_payment: 0,
  authorized: 1,
  captured: 2,
  partially_refunded: 3,
  refunded: 4,
  voided: 4,
};

const PAYMENT_EVENTS = new Set(['payment.authorized', 'payment.captured', 'payment.voided', 'payment.refunded']);
const OrderId = z.string().regex(shopIdPattern('ord'));
const DeletedToken = z.object({ token: z.string().regex(/^tok_[A-Za-z0-9]{1,64}$/) });

interface OrderRow {
  id: string;
  session_id: string | null;
  status: string;
  payment_id: string | null;
}

/**
 * Stores a verified event once, by its id (the `webhook-id`), and acts on it
 * in the same transaction: a second delivery of the event finds the row and
 * changes nothing, and a failure stores nothing, so the vault's retry
 * brings it again.
 */
export async function receiveEvent(db: ShopDb, event: TesseraEvent): Promise<ReceivedEvent> {
  return db.transaction(async (tx) => {
    const object = event.data.object;
    const objectId = typeof object['id'] === 'string' ? object['id'] : typeof object['token'] === 'string' ? object['token'] : null;
    const inserted = await tx.query(
      `insert into webhook_events (id, type, object_id, payload, created_at) values ($1, $2, $3, $4, $5)
       on conflict (id) do nothing returning id`,
      [event.id, event.type, objectId, JSON.stringify(event), event.created_at],
    );
    if (inserted.rows.length === 0) return { duplicate: true, effect: null };
    const effect = await actOn(tx, event);
    if (effect !== null) await tx.query('update webhook_events set effect = $2 where id = $1', [event.id, effect]);
    return { duplicate: false, effect };
  });
}

async function actOn(tx: ShopQueryable, event: TesseraEvent): Promise<string | null> {
  if (PAYMENT_EVENTS.has(event.type)) return updateOrder(tx, PaymentSchema.parse(event.data.object));
  if (event.type === 'token.deleted') return forgetSavedCard(tx, DeletedToken.parse(event.data.object).token);
  // payment.declined leaves the order awaiting payment, as the shopper's next card will; token_batch.completed is
  // read by the dashboard's card import (by the batch's id, its object_id); the rest is for the record.
  return null;
}

/**
 * The order the payment is for (its `reference`) takes the payment's status
 * when that is further along: this is how an order whose payment answer
 * never reached the shop (a network failure, the shop stopped) is paid all
 * the same. Such an order keeps its session, so the shopper's next "Pay"
 * shows it paid instead of charging again; its cart is emptied now.
 */
async function updateOrder(tx: ShopQueryable, payment: VaultPayment): Promise<string | null> {
  const orderId = OrderId.safeParse(payment.reference);
  if (!orderId.success) return null;
  const order = (await tx.query<OrderRow>('select id, session_id, status, payment_id from orders where id = $1', [orderId.data])).rows[0];
  if (order === undefined) return null;
  if (order.payment_id !== null && order.payment_id !== payment.id) return `not applied: order ${order.id} is paid by another payment`;
  const progress = PROGRESS[payment.status];
  if (progress === undefined || progress <= (PROGRESS[order.status] ?? Infinity)) return null;
  await tx.query(
    `update orders set status = $2, payment_id = $3, card_brand = $4, card_last4 = $5, updated_at = now() where id = $1`,
    [order.id, payment.status, payment.id, payment.card.brand, payment.card.last4],
  );
  if (order.status === 'awaiting_payment' && order.session_id !== null) await tx.query('delete from cart_items where session_id = $1', [order.session_id]);
  return `order ${order.id} ${payment.status}`;
}

/** A saved card whose token the vault deleted (from the account page, or by any other caller) leaves the account. */
async function forgetSavedCard(tx: ShopQueryable, token: string): Promise<string | null> {
  const { rows } = await tx.query<{ id: string; user_id: string }>('delete from saved_cards where token = $1 returning id, user_id', [token]);
  const card = rows[0];
  if (card === undefined) return null;
  await tx.query(
    `update users set default_card = (select id from saved_cards where user_id = $1 order by created_at limit 1)
      where id = $1 and (default_card = $2 or default_card is null)`,
    [card.user_id, card.id],
  );
  return `saved card ${card.id} removed`;
}
