-- Async batch tokenization (api.md, "Async batch tokenization"): a batch is
-- accepted whole, its items wait here, and the `token_batch.process` job
-- tokenizes them in chunks, each chunk's tokens and results in one
-- transaction, so a vault killed mid-batch resumes it with nothing done twice.

create table token_batches (
  id text primary key,
  merchant_id text not null references merchants (id),
  -- the merchant's own name for the batch (free text, never a card number)
  correlation_id text,
  status text not null default 'pending' check (status in ('pending', 'processing', 'completed')),
  total integer not null check (total between 1 and 10000),
  processed integer not null default 0,
  succeeded integer not null default 0,
  failed integer not null default 0,
  -- who submitted it and from where: every item's audit entry names them
  actor text not null,
  client_ip text not null,
  request_id text not null,
  -- the acceptance time: each item's iat window is checked against it
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  check (processed = succeeded + failed and processed <= total),
  check ((status = 'completed') = (completed_at is not null))
);
create index token_batches_merchant on token_batches (merchant_id, created_at desc, id desc);
-- Replay records must outlive the acceptance of every batch still to be processed (tokens/housekeeping.ts).
create index token_batches_unfinished on token_batches (created_at) where status <> 'completed';

create table token_batch_items (
  batch_id text not null references token_batches (id),
  item_index integer not null check (item_index between 0 and 9999),
  reference text,
  customer text,
  reusable boolean not null,
  decline_duplicates boolean not null,
  -- the card as the merchant sent it, a JWE only the vault's transport key
  -- opens; kept only until the item is processed, then erased
  card text,
  state text not null default 'pending' check (state in ('pending', 'succeeded', 'failed')),
  -- succeeded: the token and the card's harmless details
  token text,
  brand text,
  last4 text,
  exp_month integer,
  exp_year integer,
  -- failed: the error the item would have had alone (fixed messages, never card data)
  error_code text,
  error_message text,
  error_param text,
  processed_at timestamptz,
  primary key (batch_id, item_index),
  check ((state = 'pending') = (card is not null)),
  check ((state = 'succeeded') = (token is not null)),
  check ((state = 'failed') = (error_code is not null))
);
