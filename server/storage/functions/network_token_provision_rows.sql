-- tessera_network_token_provision_rows: the network tokens named, each with
-- its vault token's sealed card and expiry, for provisioning (server/
-- network-tokens/service.ts reads the rows of the jobs of one claim
-- together). `readable`: whether the vault token can still be read
-- (tessera_token_readable).
--
-- Planned once per connection, never by scanning a table, for the reasons
-- of tessera_claim_jobs: a key probe of each table per id.

create or replace function tessera_network_token_provision_rows(p_ids text[])
returns table (
  id text, merchant_id text, token text, network text, status text, token_id text, token_last4 text, token_exp_month integer,
  token_exp_year integer, pan_last4 text, par text, card_art_id text, issuer_name text, correlation_id text, created_at timestamptz,
  updated_at timestamptz, account_id text, email text, batch_id text, actor text, client_ip text, request_id text, settled_at timestamptz,
  card_sealed bytea, card_key_sealed bytea, card_data_key_version integer, exp_month integer, exp_year integer, readable boolean)
language plpgsql
stable
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
begin
  return query
    select n.id, n.merchant_id, n.token, n.network, n.status, n.token_id, n.token_last4, n.token_exp_month, n.token_exp_year, n.pan_last4, n.par,
           n.card_art_id, n.issuer_name, n.correlation_id, n.created_at, n.updated_at,
           n.account_id, n.email, n.batch_id, n.actor, n.client_ip, n.request_id, n.settled_at,
           t.card_sealed, t.card_key_sealed, t.data_key_version, t.exp_month, t.exp_year,
           tessera_token_readable(t)
      from network_tokens n join tokens t on t.merchant_id = n.merchant_id and t.token = n.token
     where n.id = any(p_ids);
end;
$$;
