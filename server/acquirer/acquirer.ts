/**
 * What the vault needs from an acquirer. The sandbox implements it; a real
 * acquirer connector would implement the same interface. Every call carries
 * the vault's `reference` for the payment, which the acquirer uses as its own
 * idempotency key: asked twice with one reference, it answers with the first
 * authorization instead of making a second one.
 */
export interface AuthorizationRequest {
  /** The vault's reference for this authorization (a payment id, or a verification id). */
  reference: string;
  /** The card number, or a network token's number (with its cryptogram in `networkToken`). */
  card: { number: string; exp_month: number; exp_year: number; cvc?: string | undefined };
  /** A network token authorization: the cryptogram the token service made for this one payment. */
  networkToken?: { cryptogram: string; eci: string } | undefined;
  amount: number;
  currency: string;
  /** Customer-initiated (the shopper is present), or merchant-initiated on a saved card. */
  initiator: 'customer' | 'merchant';
  recurring: boolean;
  /** Online (the default), or a mail or telephone order keyed in by the merchant's agent (no SCA). */
  channel?: 'ecommerce' | 'moto' | undefined;
  /** What a stored-credential payment is for: the chain's agreement with the cardholder. */
  agreement?: 'subscription' | 'unscheduled' | 'installment' | null | undefined;
  /** A merchant-initiated payment: the network transaction id of the customer-initiated payment that set up the chain. */
  previousNetworkTransactionId?: string | undefined;
}

/** An approved authorization carries the network's id for it, which a later merchant-initiated payment may cite. */
export type AuthorizationResult = { approved: true; networkTransactionId?: string } | { approved: false; declineCode: string };

export interface Acquirer {
  /** Throws `AcquirerError` when no answer came back; the outcome is then unknown until asked again. */
  authorize(request: AuthorizationRequest): Promise<AuthorizationResult>;
  /**
   * Many authorizations in one submission (as acquirers take recurring
   * billing runs), each answered on its own, in order: an item whose answer
   * was lost is an `AcquirerError`, safe to ask again by its reference.
   * Throws when the submission as a whole got no answer.
   */
  authorizeMany(requests: readonly AuthorizationRequest[]): Promise<(AuthorizationResult | AcquirerError)[]>;
  capture(reference: string, amount: number): Promise<void>;
  void(reference: string): Promise<void>;
  refund(reference: string, refundId: string, amount: number): Promise<void>;
}

/** The acquirer did not answer (timeout, connection lost, 5xx): safe to retry with the same reference. */
export class AcquirerError extends Error {
  constructor(message = 'the acquirer did not answer') {
    super(message);
    this.name = 'AcquirerError';
  }
}
