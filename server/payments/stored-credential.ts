import { VaultError } from '../errors.ts';
import type { Agreement, CreatePaymentInput } from './schema.ts';

/**
 * Stored credentials, as card networks require them (Visa's and
 * Mastercard's card-on-file frameworks): a customer-initiated payment on a
 * saved card with `setup_future_usage` sets up the chain, and the acquirer's
 * network transaction id for it is kept on the token; every
 * merchant-initiated payment after it cites that id, carries no CVC (the
 * cardholder is not there), and is refused without one.
 */
export interface CredentialTerms {
  initiator: 'customer' | 'merchant';
  /** What a stored-credential payment is for; null for a one-off customer payment. */
  agreement: Agreement | null;
  channel: 'ecommerce' | 'moto';
  /** On approval, keep the acquirer's network transaction id on the token. */
  setupFutureUsage: boolean;
  /** A merchant-initiated payment: the chain's network transaction id, sent to the acquirer. */
  previousNetworkTransactionId: string | undefined;
  /** The v1 flag, now also set by a subscription or installment agreement. */
  recurring: boolean;
}

/** What a token says about its chain and its channel. */
export interface TokenCredential {
  reusable: boolean;
  moto: boolean;
  network_transaction_id: string | null;
  stored_credential_agreement: Agreement | null;
}

type CredentialRequest = Pick<CreatePaymentInput, 'initiator' | 'agreement' | 'setup_future_usage' | 'channel' | 'cvc' | 'recurring'>;

/** The terms of a payment on `token`, or the refusal: a combination no network accepts, or a token that cannot be charged this way. */
export function credentialTerms(input: CredentialRequest, token: TokenCredential): CredentialTerms {
  const merchantInitiated = input.initiator === 'merchant';
  if (merchantInitiated && input.cvc !== undefined) {
    throw new VaultError('parameter_invalid', { message: 'A merchant-initiated payment takes no CVC: the cardholder is not there to give one.', param: 'cvc' });
  }
  if (merchantInitiated && input.setup_future_usage) {
    throw new VaultError('parameter_invalid', {
      message: 'Only a customer-initiated payment can set up a stored credential (setup_future_usage).',
      param: 'setup_future_usage',
    });
  }
  if (merchantInitiated && input.channel === 'moto') {
    throw new VaultError('parameter_invalid', { message: "A MOTO payment is the cardholder's own order taken by an agent: its initiator is the customer.", param: 'channel' });
  }
  if (token.moto && input.channel !== 'moto') throw new VaultError('token_moto_only', { param: 'token' });
  if (input.setup_future_usage && !token.reusable) throw new VaultError('token_not_reusable', { param: 'token' });
  if (merchantInitiated && (!token.reusable || token.network_transaction_id === null)) throw new VaultError('stored_credential_required', { param: 'token' });

  const agreement =
    input.agreement ?? (merchantInitiated ? (token.stored_credential_agreement ?? 'unscheduled') : input.setup_future_usage ? 'unscheduled' : null);
  return {
    initiator: input.initiator,
    agreement,
    channel: input.channel,
    setupFutureUsage: input.setup_future_usage,
    previousNetworkTransactionId: merchantInitiated ? token.network_transaction_id! : undefined,
    recurring: input.recurring || agreement === 'subscription' || agreement === 'installment',
  };
}
