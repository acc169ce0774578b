/** A token as the API reports it; never card data. */
export interface TokenRecord {
  token: string;
  reusable: boolean;
  customer: string | null;
  decline_duplicates: boolean;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  cardholder_name: string | null;
  fingerprint: string;
  expires_at: Date | null;
  used_at: Date | null;
  created_at: Date;
}

/** The columns of a `TokenRecord`, for `select ${TOKEN_COLUMNS} from tokens` and `returning`. */
export const TOKEN_COLUMNS = `token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
  cardholder_name, fingerprint, expires_at, used_at, created_at`;

/**
 * A token that can be read: not deleted, and not a single-use token that
 * expired unused (its card is destroyed). A spent single-use token stays
 * readable, with `used_at` set.
 */
export const READABLE = `deleted_at is null and (reusable or used_at is not null or expires_at > now())`;

/**
 * A token that can still be charged: readable, and not a spent single-use
 * token. (The duplicate and unique-token checks in tessera_create_token look
 * only at these.)
 */
export const CHARGEABLE = `deleted_at is null and (reusable or (used_at is null and expires_at > now()))`;

/** A single-use token that is never charged expires after this. */
export const SINGLE_USE_LIFETIME_MS = 30 * 60_000;

/** The token record a bulk item left, as `tessera_update_token` returns (and the idempotency record keeps) it. */
export function tokenRecordFromJson(text: string): TokenRecord {
  const raw = JSON.parse(text) as Omit<TokenRecord, 'created_at' | 'used_at' | 'expires_at'> & {
    created_at: string;
    used_at: string | null;
    expires_at: string | null;
  };
  const date = (value: string | null) => (value === null ? null : new Date(value));
  return { ...raw, created_at: new Date(raw.created_at), used_at: date(raw.used_at), expires_at: date(raw.expires_at) };
}
