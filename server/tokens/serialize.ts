import type { TokenOutcome, TokenRecord } from './service.ts';

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

/** The token object of the API, as the merchant's server sees it. */
export function tokenBody(token: TokenRecord) {
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
  };
}

export function createdTokenBody(outcome: TokenOutcome) {
  return {
    ...tokenBody(outcome.token),
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
