import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';

/** What a stored credential is used for, agreed with the cardholder when the chain was set up. */
export const AGREEMENTS = ['subscription', 'unscheduled', 'installment'] as const;
export type Agreement = (typeof AGREEMENTS)[number];

/** ISO 4217 codes this runtime knows; upper case only, as the API says. */
const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

/** Minor units: a positive integer, at most 99,999,999 (the usual acquirer ceiling). */
export const Amount = z.number().int().min(1).max(99_999_999);

/** A token or payment id: merchant-chosen token names are text too, so never card-number-like. */
export const ObjectId = freeText({ max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ });

/** The merchant's own order reference: printable text, never card-number-like. */
export const Reference = freeText({ max: 255, pattern: /^[\x20-\x7e]+$/ });

export const Currency = z
  .string()
  .max(3, { abort: true })
  .refine((code) => /^[A-Z]{3}$/.test(code) && CURRENCIES.has(code), 'must be an ISO 4217 code in upper case');

export const CreatePaymentRequest = z.strictObject({
  token: ObjectId,
  amount: Amount,
  currency: Currency,
  /** Capture at once (the default), or authorize now and capture later. */
  capture: z.boolean().default(true),
  reference: Reference.optional(),
  recurring: z.boolean().default(false),
  /** A compact JWE of {"cvc":"…"} from the card fields in cvc mode. */
  cvc: z.string().min(1).max(8192, { abort: true }).optional(),
  /** Stored credentials (see stored-credential.ts): who starts the payment, and under which agreement with the cardholder. */
  initiator: z.enum(['customer', 'merchant']).default('customer'),
  agreement: z.enum(AGREEMENTS).optional(),
  /** A customer-initiated payment on a saved card that sets up its stored-credential chain. */
  setup_future_usage: z.boolean().default(false),
  /** Online, or a mail or telephone order keyed in by the merchant's agent. */
  channel: z.enum(['ecommerce', 'moto']).default('ecommerce'),
});
export type CreatePaymentInput = z.output<typeof CreatePaymentRequest>;

/** Capture or refund: the whole remaining amount unless told otherwise. */
export const AmountRequest = z.strictObject({ amount: Amount.optional() });

export const VoidRequest = z.strictObject({});

/** A payment named in the path. */
export const PaymentPath = z.strictObject({ id: freeText({ max: 128 }) });

export const ListPaymentsQuery = z.strictObject({
  reference: Reference.optional(),
  token: ObjectId.optional(),
  subscription: ObjectId.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: ObjectId.optional(),
});
