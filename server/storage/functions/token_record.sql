-- tessera_token_record: a token as the API reports it (TokenRecord in
-- server/cards/records.ts), never card data. The one list of a token's
-- reported columns: reads select it, updates return it, and a bulk update's
-- idempotency record keeps it.

create or replace function tessera_token_record(t tokens) returns json
language sql
stable
as $$
  select json_build_object(
    'token', t.token, 'reusable', t.reusable, 'customer', t.customer, 'decline_duplicates', t.decline_duplicates,
    'brand', t.brand, 'last4', t.last4, 'exp_month', t.exp_month, 'exp_year', t.exp_year,
    'cardholder_name', t.cardholder_name, 'fingerprint', t.fingerprint,
    'expires_at', t.expires_at, 'used_at', t.used_at, 'created_at', t.created_at,
    'network_transaction_id', t.network_transaction_id, 'stored_credential_agreement', t.stored_credential_agreement,
    'moto', t.moto
  )
$$;
