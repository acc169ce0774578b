import type { PaymentRecord, RefundRecord } from './service.ts';

/** The payment object of the API. */
export function paymentBody(payment: PaymentRecord) {
  return {
    id: payment.id,
    object: 'payment',
    status: payment.status,
    amount: payment.amount,
    currency: payment.currency,
    amount_captured: payment.amount_captured,
    amount_refunded: payment.amount_refunded,
    token: payment.token,
    card: { brand: payment.brand, last4: payment.last4 },
    reference: payment.reference,
    recurring: payment.recurring,
    decline_code: payment.decline_code,
    credential: payment.credential,
    initiator: payment.initiator ?? 'customer',
    agreement: payment.agreement ?? null,
    channel: payment.channel ?? 'ecommerce',
    network_transaction_id: payment.network_transaction_id ?? null,
    subscription: payment.subscription_id ?? null,
    created_at: payment.created_at.toISOString(),
    updated_at: payment.updated_at.toISOString(),
  };
}

/** A refund, with the payment as it stands after it. */
export function refundBody(refund: RefundRecord, payment: PaymentRecord) {
  return {
    id: refund.id,
    object: 'refund',
    amount: refund.amount,
    currency: payment.currency,
    payment: paymentBody(payment),
    created_at: refund.created_at.toISOString(),
  };
}
