import type { NetworkTokenStatus } from './token-service.ts';

/** A network token as the vault reports it (a row of `network_tokens` without its sealed number). */
export interface NetworkTokenRecord {
  id: string;
  merchant_id: string;
  token: string;
  network: string;
  status: NetworkTokenStatus;
  token_id: string | null;
  token_last4: string | null;
  token_exp_month: number | null;
  token_exp_year: number | null;
  pan_last4: string | null;
  par: string | null;
  card_art_id: string | null;
  issuer_name: string | null;
  correlation_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** `select ${NETWORK_TOKEN_COLUMNS} from network_tokens …`: never the sealed number. */
export const NETWORK_TOKEN_COLUMNS = `id, merchant_id, token, network, status, token_id, token_last4, token_exp_month, token_exp_year, pan_last4, par,
  card_art_id, issuer_name, correlation_id, created_at, updated_at`;

const iso = (date: Date | string) => new Date(date).toISOString();

/** The network token object of the API (api.md): metadata only, never the network token number. */
export function networkTokenBody(record: NetworkTokenRecord) {
  return {
    id: record.id,
    object: 'network_token' as const,
    token: record.token,
    network: record.network,
    token_id: record.token_id,
    status: record.status,
    token_last4: record.token_last4,
    token_exp_month: record.token_exp_month,
    token_exp_year: record.token_exp_year,
    pan_last4: record.pan_last4,
    par: record.par,
    card_art_id: record.card_art_id,
    issuer: record.issuer_name === null ? null : { name: record.issuer_name },
    correlation_id: record.correlation_id,
    created_at: iso(record.created_at),
    updated_at: iso(record.updated_at),
  };
}
