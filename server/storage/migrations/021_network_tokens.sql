-- Network tokens (api.md, "Network tokens (sandbox token service)"): the
-- vault's record of each network token it asked a card network for, and the
-- sandbox token services' own state. Numbered 021: 014–020 are taken by
-- other v2 work in flight.

-- The merchant setting: when on, every new reusable token gets a network token in the background.
alter table merchants add column network_tokens boolean not null default false;

-- The vault's side: one row per request to a token service (Visa and Amex
-- answer the same token_id again for the same card, so two rows may share one).
create table network_tokens (
  id text primary key,
  merchant_id text not null references merchants (id),
  token text not null,
  -- visa, mastercard or amex; a card of another brand is recorded under its brand, ineligible
  network text not null,
  status text not null check (status in ('pending', 'active', 'suspended', 'deleted', 'ineligible', 'declined')),
  -- who asked: the tokenization (background), the explicit endpoint, or a token batch
  requested_by text not null check (requested_by in ('background', 'sync', 'async', 'batch')),
  batch_id text references token_batches (id),
  correlation_id text,
  account_id text,
  email text,
  -- the token service's answer: its id and non-sensitive metadata
  token_id text,
  token_last4 text,
  token_exp_month integer,
  token_exp_year integer,
  pan_last4 text,
  par text,
  card_art_id text,
  issuer_name text,
  -- the network token number (DPAN), sealed like a card number under a key of its own (CardSealer, owner = this id)
  dpan_sealed bytea,
  dpan_key_sealed bytea,
  data_key_version integer,
  -- the request that caused it, as its events' audit entries name it
  actor text not null,
  client_ip text,
  request_id text,
  -- set once network_token.created was written, so a retried job never writes it twice
  settled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  foreign key (merchant_id, token) references tokens (merchant_id, token),
  check ((dpan_sealed is null) = (dpan_key_sealed is null))
);
create index network_tokens_token on network_tokens (merchant_id, token, created_at desc);
create index network_tokens_token_id on network_tokens (network, token_id) where token_id is not null;
create index network_tokens_batch on network_tokens (batch_id) where batch_id is not null;

alter table payments add column credential text not null default 'pan' check (credential in ('pan', 'network_token'));

alter table token_batches add column network_tokens boolean not null default false;

-- The sandbox token services (server/network-tokens/sandbox.ts) stand for the
-- card networks' systems: what follows is their memory, not the vault's.
-- Their one secret derives token ids, DPANs and PARs, so no DPAN is stored here.
create table sandbox_tsp_secret (
  only_row boolean primary key default true check (only_row),
  secret bytea not null
);

create table sandbox_tsp_tokens (
  network text not null,
  token_id text not null,
  requestor text not null,
  -- Visa: (requestor, card, account_id); Amex: (…, email); Mastercard: none, a new token each request
  reuse_key text,
  status text not null check (status in ('pending', 'active', 'suspended', 'deleted', 'ineligible', 'declined')),
  -- a delayed provisioning turns active at this time
  active_at timestamptz,
  token_exp_month integer not null,
  token_exp_year integer not null,
  pan_last4 text not null,
  pan_exp_month integer not null,
  pan_exp_year integer not null,
  par text not null,
  card_art_id text not null,
  issuer_name text not null,
  cryptograms integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (network, token_id)
);
create unique index sandbox_tsp_tokens_reuse on sandbox_tsp_tokens (network, reuse_key) where reuse_key is not null;

-- A request id seen before gets the token it was given (a retried request never makes a second token).
create table sandbox_tsp_requests (
  network text not null,
  request_id text not null,
  token_id text not null,
  primary key (network, request_id)
);

-- Cryptograms handed out and not yet used, by hash: each authorizes one payment.
create table sandbox_tsp_cryptograms (
  hash bytea primary key,
  network text not null,
  token_id text not null,
  expires_at timestamptz not null
);
