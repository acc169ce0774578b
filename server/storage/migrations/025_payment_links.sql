-- Payment links (api.md, "Payment links and batch payment operations"): a
-- link a merchant sends its customer, paid on the vault's hosted page.

create table payment_links (
  id text primary key,
  merchant_id text not null references merchants (id),
  -- the hosted page's address, fixed when the link is made (events carry it)
  url text not null,
  status text not null default 'active' check (status in ('active', 'completed', 'expired')),
  amount bigint not null check (amount between 1 and 99999999),
  currency text not null,
  description text,
  reference text,
  -- stored for the merchant; the vault sends no e-mail
  customer_email text,
  max_payments integer not null check (max_payments between 1 and 1000),
  payments_count integer not null default 0,
  latest_payment text,
  expires_at timestamptz not null,
  -- who made it and from where: its expiry's audit entry names them
  actor text not null,
  client_ip text not null,
  request_id text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  expired_at timestamptz,
  check (payments_count between 0 and max_payments),
  check ((status = 'completed') = (completed_at is not null)),
  check ((status = 'expired') = (expired_at is not null))
);
create index payment_links_merchant on payment_links (merchant_id, created_at desc, id desc);

-- A payment in flight on a link holds one of its slots until it is recorded
-- (or refused); a slot whose payer died is free again once it expires.
create table payment_link_attempts (
  id text primary key,
  link_id text not null references payment_links (id),
  expires_at timestamptz not null
);
create index payment_link_attempts_link on payment_link_attempts (link_id, expires_at);

-- The approved payments made through a link.
create table payment_link_payments (
  link_id text not null references payment_links (id),
  payment_id text not null,
  created_at timestamptz not null default now(),
  primary key (link_id, payment_id)
);
