import { VaultError } from '../errors.ts';
import type { PaymentRecord } from './service.ts';

/**
 * The rules of capture, void and refund, apart from where they are applied:
 * `PaymentService` applies one to a payment it locked; a payment batch
 * applies a chunk's in item order to the payments it locked
 * (server/payment-batches/changes.ts). One set of rules, so a batch item is
 * refused exactly as its own request would be.
 */

type Amounts = Pick<PaymentRecord, 'status' | 'amount' | 'amount_captured' | 'amount_refunded'>;

/** The amount a capture takes (all of it by default), or its refusal. */
export function captureAmount(payment: Amounts, amount: number | undefined): number {
  if (payment.status !== 'authorized') throw new VaultError('payment_not_capturable', { param: 'id' });
  const capture = amount ?? payment.amount;
  if (capture > payment.amount) throw new VaultError('amount_too_large', { param: 'amount' });
  return capture;
}

/** Refuses a void of anything but an authorization. */
export function checkVoidable(payment: Amounts): void {
  if (payment.status !== 'authorized') throw new VaultError('payment_not_voidable', { param: 'id' });
}

/** The amount a refund gives back (all that is left by default), or its refusal. */
export function refundAmount(payment: Amounts, amount: number | undefined): number {
  const left = payment.amount_captured - payment.amount_refunded;
  if ((payment.status !== 'captured' && payment.status !== 'partially_refunded') || left <= 0) {
    throw new VaultError('payment_not_refundable', { param: 'id' });
  }
  const refund = amount ?? left;
  if (refund > left) throw new VaultError('amount_too_large', { param: 'amount' });
  return refund;
}

/** The status a refund of `refund` leaves. */
export function statusAfterRefund(payment: Amounts, refund: number): 'refunded' | 'partially_refunded' {
  return payment.amount_refunded + refund === payment.amount_captured ? 'refunded' : 'partially_refunded';
}
