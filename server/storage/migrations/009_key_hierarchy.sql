-- The key hierarchy after the security review: versioned merchant data keys,
-- rollable secret keys, a key per card, CVCs under short-lived bucket keys,
-- details waiting to be proven for unique tokens, and what card-testing
-- limits count.

-- Merchant data keys by version: a rotation adds one, re-encrypts the cards
-- and then destroys the old one (its row deleted, the table rewritten).
create table merchant_data_keys (
  merchant_id text not null references merchants (id),
  version integer not null,
  -- wrapped under the master key, AAD tessera/v1/data-key/<merchant>/<version>
  key_sealed bytea not null,
  created_at timestamptz not null default now(),
  primary key (merchant_id, version)
);
insert into merchant_data_keys (merchant_id, version, key_sealed)
select id, data_key_version, data_key_sealed from merchants;
alter table merchants drop column data_key_sealed;

-- Secret keys, so one can be rolled while the previous keeps working for a while.
create table merchant_secret_keys (
  -- SHA-256 of the key (keys carry 192 random bits, so a fast hash is enough)
  key_hash bytea primary key,
  merchant_id text not null references merchants (id),
  created_at timestamptz not null default now(),
  -- null while it is the merchant's current key; set when a roll retires it
  expires_at timestamptz
);
create index merchant_secret_keys_merchant on merchant_secret_keys (merchant_id);
insert into merchant_secret_keys (key_hash, merchant_id, created_at)
select secret_key_hash, id, created_at from merchants;
alter table merchants drop column secret_key_hash;

-- A card's own key, wrapped under the merchant data key of data_key_version;
-- null for cards sealed directly under the data key before this migration,
-- which the re-encryption moves to a key of their own.
alter table tokens add column card_key_sealed bytea;
create index tokens_data_key_version on tokens (merchant_id, data_key_version) where card_sealed is not null;
create index tokens_without_card_key on tokens (merchant_id) where card_key_sealed is null and card_sealed is not null;

-- CVC bucket keys. Unlogged: never written to the WAL, so destroying a key
-- (delete, then vacuum full) leaves no copy of it on disk.
create unlogged table cvc_keys (
  bucket bigint primary key,
  -- wrapped under the master key, AAD tessera/v2/cvc-key/<bucket>
  key_sealed bytea not null,
  -- every CVC of the bucket is past its lifetime by then
  destroy_after timestamptz not null
);
alter table tokens add column cvc_bucket bigint;
-- CVCs sealed under the data key are erased: they live 30 minutes at most,
-- and from now on a CVC is only ever sealed under a bucket key.
update tokens set cvc_sealed = null, cvc_expires_at = null where cvc_sealed is not null;

-- Where a token made through the card fields came from, so declines on it
-- count against that session and client IP (card-testing limits).
alter table tokens add column session_id text;
alter table tokens add column client_ip text;

-- Unique tokens through the card fields: a card already tokenized answers the
-- same token, but its new details (expiry, name, postal code, CVC) wait here
-- until an approved authorization or verification proves them. One row per
-- token, the latest tokenization's.
create table token_pending_cards (
  merchant_id text not null,
  token text not null,
  -- sealed like a token's card, but bound to the card's fingerprint (tessera/v2/pending-card-key/…)
  card_sealed bytea not null,
  card_key_sealed bytea not null,
  data_key_version integer not null,
  exp_month integer not null,
  exp_year integer not null,
  cardholder_name text,
  cvc_sealed bytea,
  cvc_bucket bigint,
  -- the shopper asked for a saved card
  reusable boolean not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (merchant_id, token),
  foreign key (merchant_id, token) references tokens (merchant_id, token)
);
create index token_pending_cards_expires_at on token_pending_cards (expires_at);

-- Declines counted per fixed window, by what they are attributed to:
-- 'session:<id>', 'ip:<address>', 'card:<merchant>:<fingerprint>'.
create table decline_counters (
  key text not null,
  window_start timestamptz not null,
  declines integer not null,
  primary key (key, window_start)
);
create index decline_counters_window_start on decline_counters (window_start);
