import { api, type TestMerchant } from './api.ts';
import { CARDS, cardPlaintext, encryptCard } from './cards.ts';

export interface ChainedCard {
  token: string;
  /** The network transaction id the setting-up payment got, now the token's stored credential. */
  networkTransactionId: string;
  /** The customer-initiated payment that set it up. */
  firstPayment: string;
}

/**
 * A saved card with a stored credential, made the way a merchant makes one:
 * the merchant's server tokenizes it (reusable), then charges it once with
 * the cardholder present and `setup_future_usage`.
 */
export async function savedCardWithCredential(
  vaultUrl: string,
  merchant: TestMerchant,
  options: { number?: string; customer?: string; agreement?: 'subscription' | 'unscheduled' | 'installment'; amount?: number } = {},
): Promise<ChainedCard> {
  const number = options.number ?? CARDS.visa.number;
  const cvc = number === CARDS.amex.number ? CARDS.amex.cvc : CARDS.visa.cvc;
  const created = await api(vaultUrl, 'POST', '/v1/tokens', {
    key: merchant.secretKey,
    json: { card: await encryptCard(vaultUrl, cardPlaintext({ number, cvc })), reusable: true, ...(options.customer ? { customer: options.customer } : {}) },
  });
  if (created.status !== 201) throw new Error(`tokenizing failed: ${created.status} ${created.text}`);
  const first = await api(vaultUrl, 'POST', '/v1/payments', {
    key: merchant.secretKey,
    json: {
      token: created.body.token,
      amount: options.amount ?? 999,
      currency: 'EUR',
      setup_future_usage: true,
      agreement: options.agreement ?? 'subscription',
    },
  });
  if (first.status !== 201) throw new Error(`the setting-up payment failed: ${first.status} ${first.text}`);
  return { token: created.body.token, networkTransactionId: first.body.network_transaction_id, firstPayment: first.body.id };
}
