import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';
import { Amount, Currency, ObjectId, Reference } from '../payments/schema.ts';

/** A link lives 24 hours unless told otherwise, and at most 70 days (api.md). */
export const DEFAULT_LIFETIME_MS = 24 * 3600 * 1000;
export const MAX_LIFETIME_MS = 70 * 24 * 3600 * 1000;

/** Shown to the shopper on the hosted page: printable text, never card-number-like. */
const Description = freeText({ max: 500, pattern: /^[^\u0000-\u001f\u007f]+$/ });

/** Stored for the merchant's own use; no e-mail is sent. */
const CustomerEmail = freeText({ max: 254, pattern: /^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/ });

export const CreatePaymentLinkRequest = z.strictObject({
  amount: Amount,
  currency: Currency,
  description: Description.optional(),
  reference: Reference.optional(),
  /** ISO 8601 with an offset; checked against the request's time in the service (future, at most 70 days). */
  expires_at: z.iso.datetime({ offset: true }).optional(),
  max_payments: z.number().int().min(1).max(1000).default(1),
  customer_email: CustomerEmail.optional(),
});
export type CreatePaymentLinkInput = z.output<typeof CreatePaymentLinkRequest>;

export const PaymentLinkPath = z.strictObject({ id: freeText({ max: 64, pattern: /^plink_[A-Za-z0-9]+$/ }) });

export const ListPaymentLinksQuery = z.strictObject({
  status: z.enum(['active', 'completed', 'expired']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: ObjectId.optional(),
});

export const ExpirePaymentLinkRequest = z.strictObject({});

/** What the hosted page sends: the single-use token the card fields just made. */
export const PayLinkRequest = z.strictObject({ token: ObjectId });
