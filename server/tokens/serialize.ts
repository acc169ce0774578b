import { errorBody } from '../http/error-response.ts';
import type { BulkOutcome } from './bulk-update.ts';
import type { TokenOutcome } from './create.ts';
import type { TokenRecord } from '../cards/records.ts';
import { networkTokenBody, type NetworkTokenRecord } from '../network-tokens/serialize.ts';
import { networkOf } from '../network-tokens/token-service.ts';

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

/**
 * The token object of the API, as the merchant's server sees it; reads add
 * its newest network token (null when it has none).
 */
export function tokenBody(token: TokenRecord, networkToken?: NetworkTokenRecord | null) {
  return {
    token: token.token,
    reusable: token.reusable,
    customer: token.customer,
    decline_duplicates: token.decline_duplicates,
    card: {
      brand: token.brand,
      last4: token.last4,
      exp_month: token.exp_month,
      exp_year: token.exp_year,
      fingerprint: token.fingerprint,
      name: token.cardholder_name,
    },
    created_at: iso(token.created_at),
    used_at: iso(token.used_at),
    expires_at: iso(token.expires_at),
    ...(networkToken === undefined ? {} : { network_token: networkToken === null ? null : networkTokenBody(networkToken) }),
    moto: token.moto ?? false,
    stored_credential:
      token.network_transaction_id == null
        ? null
        : { network_transaction_id: token.network_transaction_id, agreement: token.stored_credential_agreement ?? 'unscheduled' },
  };
}

/** `networkTokens`: the merchant's setting, under which a new reusable token's network token is being requested. */
export function createdTokenBody(outcome: TokenOutcome, networkTokens = false) {
  const requested = networkTokens && !outcome.existing && outcome.token.reusable && networkOf(outcome.token.brand) !== undefined;
  return {
    ...tokenBody(outcome.token),
    ...(requested ? { network_token: { status: 'pending' as const } } : {}),
    ...(outcome.existing ? { existing: true } : {}),
    ...(outcome.verification === undefined ? {} : { verification: outcome.verification }),
  };
}

/** What the card fields may pass to the merchant page: no fingerprint, no customer. */
export function browserTokenBody(token: TokenRecord) {
  return {
    token: token.token,
    reusable: token.reusable,
    card: { brand: token.brand, last4: token.last4, exp_month: token.exp_month, exp_year: token.exp_year },
  };
}

/**
 * The answer to `PATCH /v1/tokens`: one result per item, in request order.
 * A refused item carries the error body the API would have answered for it alone.
 */
export function bulkUpdateBody(outcomes: BulkOutcome[]) {
  const results = outcomes.map((outcome) =>
    'record' in outcome
      ? { token: outcome.token, ok: true as const, object: tokenBody(outcome.record) }
      : { token: outcome.token, ok: false as const, error: errorBody(outcome.error).error },
  );
  const succeeded = results.filter((result) => result.ok).length;
  const status = succeeded === results.length ? 'SUCCESS' : succeeded === 0 ? 'FAILURE' : 'PARTIAL_SUCCESS';
  return { status, results };
}
