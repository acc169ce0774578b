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
  /** The stored-credential chain the token carries: the network transaction id of the payment that set it up, and what for. */
  network_transaction_id?: string | null;
  stored_credential_agreement?: 'subscription' | 'unscheduled' | 'installment' | null;
  /** Keyed in by a merchant's agent (the fields' moto mode): only MOTO payments may charge it. */
  moto?: boolean;
}

/**
 * The `TokenRecord` of a row of `tokens`, as one json column `record`
 * (`select ${TOKEN_RECORD} from tokens …`, or `returning ${TOKEN_RECORD}`):
 * the columns are listed once, in tessera_token_record.
 */
export const TOKEN_RECORD = 'tessera_token_record(tokens) as record';

/** A single-use token that is never charged expires after this. */
export const SINGLE_USE_LIFETIME_MS = 30 * 60_000;

/** A token record from tessera_token_record, as json text (what tessera_update_token returns and bulk items keep) or as parsed. */
export function tokenRecordOf(record: unknown): TokenRecord {
  const raw = (typeof record === 'string' ? JSON.parse(record) : record) as Omit<TokenRecord, 'created_at' | 'used_at' | 'expires_at'> & {
    created_at: string;
    used_at: string | null;
    expires_at: string | null;
  };
  const date = (value: string | null) => (value === null ? null : new Date(value));
  return { ...raw, created_at: new Date(raw.created_at), used_at: date(raw.used_at), expires_at: date(raw.expires_at) };
}
