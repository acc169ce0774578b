-- A card's details as the vault stores them: what tessera_create_token writes
-- for a new token and tessera_update_token for a token's new card, passed as
-- one value instead of the same twelve parameters in both.
create type tessera_card_details as (
  brand text,
  last4 text,
  exp_month integer,
  exp_year integer,
  cardholder_name text,
  fingerprint text,
  -- the card under its own key, and that key wrapped under the data key of data_key_version
  card_sealed bytea,
  card_key_sealed bytea,
  data_key_version integer,
  -- the CVC under the key of its bucket
  cvc_sealed bytea,
  cvc_bucket bigint,
  cvc_expires_at timestamptz
);
