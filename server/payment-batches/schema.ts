import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';
import { Amount, Currency, ObjectId, Reference } from '../payments/schema.ts';

/** Items in one `POST /v1/payment-batches` (api.md). */
export const PAYMENT_BATCH_MAX_ITEMS = 10_000;

/** The envelope first, items unread: a body of a million tiny items is refused for its count before any item is parsed. */
export const PaymentBatchEnvelope = z.object({
  items: z.array(z.unknown()).min(1).max(PAYMENT_BATCH_MAX_ITEMS),
});

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
  items: z.array(PaymentBatchItem).min(1).max(PAYMENT_BATCH_MAX_ITEMS),
});
export type PaymentBatchInput = z.output<typeof PaymentBatchRequest>;

export const PaymentBatchPath = z.strictObject({ id: freeText({ max: 64, pattern: /^pbat_[A-Za-z0-9]+$/ }) });

export const PaymentBatchResultsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  starting_after: z
    .string()
    .regex(/^\d{1,5}$/)
    .transform(Number)
    .pipe(z.number().max(PAYMENT_BATCH_MAX_ITEMS - 1))
    .optional(),
});
