/**
 * What the vault needs from a card network's token service (Visa Token
 * Service, Mastercard MDES, American Express Token Service): the seam a real
 * connector would implement. The sandbox (`sandbox.ts`) implements it for
 * each network.
 */

export const NETWORKS = ['visa', 'mastercard', 'amex'] as const;
export type Network = (typeof NETWORKS)[number];

/** The network whose token service tokenizes a card of this brand (the card's brand as the vault names it), if any. */
export function networkOf(brand: string): Network | undefined {
  if (brand === 'visa' || brand === 'mastercard') return brand;
  return brand === 'american-express' ? 'amex' : undefined;
}

export type NetworkTokenStatus = 'pending' | 'active' | 'suspended' | 'deleted' | 'ineligible' | 'declined';

export interface ProvisionRequest {
  /**
   * The vault's id for this request (the network token's `ntok_…` id): a
   * request retried with the same id gets the same token, never a second one.
   */
  requestId: string;
  /** The token requestor: the merchant the vault asks for. */
  requestor: string;
  card: { number: string; exp_month: number; exp_year: number };
  accountId?: string | undefined;
  email?: string | undefined;
}

/** What a token service says about a token: non-sensitive metadata, and the token number (DPAN) itself. */
export interface TokenState {
  status: 'pending' | 'active' | 'suspended' | 'deleted';
  tokenId: string;
  /** The network token number (a DPAN): sealed at once by the vault, never shown. */
  dpan: string;
  token_exp_month: number;
  token_exp_year: number;
  pan_last4: string;
  pan_exp_month: number;
  pan_exp_year: number;
  par: string;
  card_art_id: string;
  issuer_name: string;
  /** A pending token: when to ask again. */
  retryAfterMs?: number;
}

export type ProvisionResult = TokenState | { status: 'ineligible' | 'declined' };

export interface Cryptogram {
  /** A one-time value that proves this authorization comes from the token's requestor (a TAVV / DSRP cryptogram). */
  cryptogram: string;
  eci: string;
}

/** A change the token requestor (the vault) asks the network for: a real connector's suspend, resume or delete call. */
export interface RequestorChange {
  event: 'suspend' | 'resume' | 'delete';
}

/**
 * The token service did not answer (an outage, a 5xx, a timeout): the
 * request may be tried again later with the same request id.
 */
export class TokenServiceUnavailable extends Error {
  readonly code = 'token_service_unavailable';

  constructor(message: string) {
    super(message);
    this.name = 'TokenServiceUnavailable';
  }
}

export interface TokenService {
  readonly network: Network;
  /** Asks for a network token (at most 10 s in practice; `signal` gives up sooner). */
  provision(request: ProvisionRequest, signal?: AbortSignal): Promise<ProvisionResult>;
  /**
   * Changes a token at the network and answers it as the network holds it
   * afterwards. Throws `LifecycleRefused` when the network holds no such
   * token or has deleted it already (for a delete: nothing left to do).
   */
  lifecycle(tokenId: string, change: RequestorChange): Promise<TokenState>;
  /** A fresh cryptogram for one authorization, or undefined when the token is not active at the network. */
  cryptogram(tokenId: string): Promise<Cryptogram | undefined>;
}

/** Why a lifecycle change cannot apply: the token is unknown to the network, or already deleted. */
export class LifecycleRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LifecycleRefused';
  }
}
