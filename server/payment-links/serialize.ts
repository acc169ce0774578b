/** A payment link as stored (`payment_links`). */
export interface PaymentLinkRecord {
  id: string;
  merchant_id: string;
  url: string;
  status: 'active' | 'completed' | 'expired';
  amount: number;
  currency: string;
  description: string | null;
  reference: string | null;
  customer_email: string | null;
  max_payments: number;
  payments_count: number;
  latest_payment: string | null;
  expires_at: Date;
  created_at: Date;
  completed_at: Date | null;
  expired_at: Date | null;
}

const iso = (date: Date | string | null) => (date === null ? null : new Date(date).toISOString());

/**
 * What the link is now: an active link past `expires_at` is expired even
 * before its expiry job has run (the job makes it so, with its event).
 */
export function currentStatus(link: Pick<PaymentLinkRecord, 'status' | 'expires_at'>, now = Date.now()): PaymentLinkRecord['status'] {
  return link.status === 'active' && new Date(link.expires_at).getTime() <= now ? 'expired' : link.status;
}

/**
 * The payment link object of the API, and the `data.object` of its events
 * (rendered from the stored record, whose dates an event holds as text).
 * An event shows the status its change left; a read shows the current one.
 */
export function paymentLinkBody(link: PaymentLinkRecord, options: { asStored?: boolean } = {}) {
  return {
    id: link.id,
    object: 'payment_link' as const,
    url: link.url,
    status: options.asStored === true ? link.status : currentStatus(link),
    amount: Number(link.amount),
    currency: link.currency,
    description: link.description,
    reference: link.reference,
    customer_email: link.customer_email,
    max_payments: link.max_payments,
    payments_count: link.payments_count,
    latest_payment: link.latest_payment,
    expires_at: iso(link.expires_at),
    created_at: iso(link.created_at),
    completed_at: iso(link.completed_at),
    expired_at: iso(link.expired_at),
  };
}
