import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';
import { Amount, Currency, ObjectId, Reference } from '../payments/schema.ts';
import { INTERVAL_UNITS, MAX_INTERVAL_COUNT } from './calendar.ts';

/** A date-time as the API writes them: ISO 8601 with a time zone (`Z` or an offset). */
const Timestamp = z.iso.datetime({ offset: true });

export const CreateSubscriptionRequest = z
  .strictObject({
    /** A saved card with a stored credential (a customer-initiated payment with setup_future_usage on it). */
    token: ObjectId,
    amount: Amount,
    currency: Currency,
    interval: z.enum(INTERVAL_UNITS),
    interval_count: z.number().int().min(1).default(1),
    /** The first charge's date on the merchant's clock; now by default. Period n is due n intervals after it. */
    start_at: Timestamp.optional(),
    /** The merchant's own name for it, also the reference of every payment it makes. */
    reference: Reference.optional(),
  })
  .superRefine((input, ctx) => {
    if (input.interval_count > MAX_INTERVAL_COUNT[input.interval]) {
      ctx.addIssue({ code: 'custom', path: ['interval_count'], message: 'an interval is at most one year' });
    }
  });
export type CreateSubscriptionInput = z.output<typeof CreateSubscriptionRequest>;

export const CancelSubscriptionRequest = z.strictObject({});

export const SubscriptionPath = z.strictObject({ id: freeText({ max: 128 }) });

export const ListSubscriptionsQuery = z.strictObject({
  customer: freeText({ max: 255, pattern: /^[\x20-\x7e\u00a0-\uffff]+$/ }).optional(),
  token: ObjectId.optional(),
  status: z.enum(['active', 'past_due', 'unpaid', 'canceled']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: ObjectId.optional(),
});

export const AdvanceClockRequest = z.strictObject({ advance_to: Timestamp });
