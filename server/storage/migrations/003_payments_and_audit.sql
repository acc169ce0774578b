-- Payments on tokens, their refunds, and the audit log of sensitive operations.

create table payments (
  merchant_id text not null references merchants (id),
  id text not null,
  token text not null,
  status text not null check (status in ('authorized', 'captured', 'voided', 'refunded', 'partially_refunded', 'declined')),
  amount bigint not null check (amount > 0),
  currency text not null,
  amount_captured bigint not null default 0,
  amount_refunded bigint not null default 0,
  -- copied from the token, so a payment still shows its card after the token is deleted
  brand text not null,
  last4 text not null,
  reference text,
  recurring boolean not null default false,
  decline_code text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (merchant_id, id),
  check (amount_captured <= amount),
  check (amount_refunded <= amount_captured)
);
create index payments_reference on payments (merchant_id, reference, created_at desc, id desc) where reference is not null;
create index payments_created_at on payments (merchant_id, created_at desc, id desc);

create table refunds (
  merchant_id text not null,
  id text not null,
  payment_id text not null,
  amount bigint not null check (amount > 0),
  created_at timestamptz not null default now(),
  primary key (merchant_id, id),
  foreign key (merchant_id, payment_id) references payments (merchant_id, id)
);
create index refunds_payment on refunds (merchant_id, payment_id, created_at);

-- The sandbox acquirer's own memory of the authorizations it made, by the
-- vault's reference: what lets a retry after a lost answer find the first
-- authorization instead of making a second one. (A real acquirer keeps this.)
create table sandbox_acquirer_authorizations (
  reference text primary key,
  approved boolean not null,
  decline_code text,
  created_at timestamptz not null default now()
);

-- Who did what to which token or payment, and how it ended. Never card data:
-- only ids, codes and the acting key's redacted id.
create table audit_events (
  seq bigint generated always as identity primary key,
  id text not null unique,
  -- null when the caller could not be tied to a merchant (an unknown key)
  merchant_id text references merchants (id),
  actor text not null,
  action text not null,
  outcome text not null check (outcome in ('succeeded', 'failed')),
  code text,
  token text,
  payment_id text,
  created_at timestamptz not null default now()
);
create index audit_events_merchant on audit_events (merchant_id, seq desc);

-- The acquirer reference drawn for the payment an Idempotency-Key makes (see IdempotencyClaim).
alter table idempotency_keys add column reference text not null default '';
