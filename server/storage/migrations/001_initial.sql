-- Tessera vault schema, version 1.
-- Card data is only ever stored as AES-256-GCM ciphertext (bytea) under a
-- per-merchant data key; keys are stored wrapped by the master key.

create table transport_keys (
  kid text primary key,
  public_jwk jsonb not null,
  -- the private JWK, encrypted under the master key; null once destroyed
  private_key_sealed bytea,
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  -- a retired key keeps decrypting until this moment, then is destroyed
  decrypt_until timestamptz
);

create table merchants (
  id text primary key,
  name text not null,
  allowed_origins text[] not null default '{}',
  unique_tokens boolean not null default false,
  webhook_url text,
  publishable_key text not null unique,
  -- SHA-256 of the secret key (keys carry 192 random bits, so a fast hash is enough)
  secret_key_hash bytea not null unique,
  data_key_sealed bytea not null,
  data_key_version integer not null default 1,
  fingerprint_key_sealed bytea not null,
  created_at timestamptz not null default now()
);

create table sessions (
  id text primary key,
  merchant_id text not null references merchants (id),
  publishable_key text not null,
  parent_origin text not null,
  tokens_created integer not null default 0,
  expires_at timestamptz not null,
  created_at timestamptz not null default now()
);
create index sessions_expires_at on sessions (expires_at);

create table tokens (
  merchant_id text not null references merchants (id),
  token text not null,
  reusable boolean not null,
  customer text,
  decline_duplicates boolean not null default false,
  brand text not null,
  last4 text not null,
  exp_month integer not null,
  exp_year integer not null,
  cardholder_name text,
  fingerprint text not null,
  -- {number, postal_code} sealed under the merchant data key, AAD = merchant, token, key version
  card_sealed bytea,
  data_key_version integer not null,
  -- the CVC, sealed apart and erased after first authorization or when it expires
  cvc_sealed bytea,
  cvc_expires_at timestamptz,
  -- single-use tokens expire unused
  expires_at timestamptz,
  used_at timestamptz,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (merchant_id, token)
);
create index tokens_fingerprint on tokens (merchant_id, fingerprint, created_at) where deleted_at is null;
-- the decline-duplicates check probes this on every tokenization, however many tokens a card has
create index tokens_declining on tokens (merchant_id, fingerprint) where decline_duplicates and deleted_at is null;
create index tokens_customer on tokens (merchant_id, customer, created_at desc) where deleted_at is null;
create index tokens_expires_at on tokens (expires_at) where expires_at is not null and deleted_at is null;
create index tokens_cvc_expires_at on tokens (cvc_expires_at) where cvc_sealed is not null;

-- SHA-256 of every accepted card ciphertext, kept a little longer than a JWE may live
create table used_ciphertexts (
  hash bytea primary key,
  expires_at timestamptz not null
);
create index used_ciphertexts_expires_at on used_ciphertexts (expires_at);

create table idempotency_keys (
  scope text not null,
  key text not null,
  request_hash bytea not null,
  -- null while the first request is still running
  response_status integer,
  response_body text,
  locked_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (scope, key)
);
create index idempotency_keys_expires_at on idempotency_keys (expires_at);
