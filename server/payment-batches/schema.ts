import { z } from 'zod';
import { BATCH_MAX_ITEMS } from '../batches/schema.ts';
import { Amount, Currency, ObjectId, Reference } from '../payments/schema.ts';

const Capture = z.strictObject({ op: z.literal('capture'), payment: ObjectId, amount: Amount.optional(), reference: Reference.optional() });
const Void = z.strictObject({ op: z.literal('void'), payment: ObjectId, reference: Reference.optional() });
const Refund = z.strictObject({ op: z.literal('refund'), payment: ObjectId, amount: Amount.optional(), reference: Reference.optional() });
/**
 * A merchant-initiated charge of a saved token (a card on file): no CVC, no
 * shopper. `initiator` can only be `merchant` in a batch; `agreement` is kept
 * with the item.
 */
const Charge = z.strictObject({
  op: z.literal('charge'),
  token: ObjectId,
  amount: Amount,
  currency: Currency,
  reference: Reference.optional(),
  initiator: z.literal('merchant').default('merchant'),
  agreement: z.enum(['subscription', 'unscheduled', 'installment']).default('unscheduled'),
});

export const PaymentBatchItem = z.discriminatedUnion('op', [Capture, Void, Refund, Charge]);
export type PaymentBatchItemInput = z.output<typeof PaymentBatchItem>;

export const PaymentBatchRequest = z.strictObject({
  correlation_id: Reference.optional(),
  items: z.array(PaymentBatchItem).min(1).max(BATCH_MAX_ITEMS),
});
export type PaymentBatchInput = z.output<typeof PaymentBatchRequest>;
