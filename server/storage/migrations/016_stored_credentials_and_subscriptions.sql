-- Stored credentials, subscriptions on a sandbox clock, and the MOTO channel
-- (api.md, "Stored credentials, subscriptions and MOTO").

-- A token's stored-credential chain: the network transaction id of the
-- customer-initiated payment that set it up (setup_future_usage), which every
-- merchant-initiated payment on the token carries, and what it was set up for.
-- A token keyed in by a merchant's agent (the fields' moto mode) is good for
-- MOTO payments only.
alter table tokens
  add column network_transaction_id text,
  add column stored_credential_agreement text check (stored_credential_agreement in ('subscription', 'unscheduled', 'installment')),
  add column moto boolean not null default false;

alter table payments
  add column initiator text not null default 'customer' check (initiator in ('customer', 'merchant')),
  add column agreement text check (agreement in ('subscription', 'unscheduled', 'installment')),
  add column channel text not null default 'ecommerce' check (channel in ('ecommerce', 'moto')),
  -- the acquirer's id for this authorization (null when declined)
  add column network_transaction_id text,
  -- the subscription whose scheduled charge this payment is
  add column subscription_id text;
create index payments_subscription on payments (merchant_id, subscription_id, created_at desc, id desc) where subscription_id is not null;

-- What the sandbox acquirer saw of each authorization, as a network checks it:
-- who initiated it, on which channel, the chain it claims to continue, and the
-- id it gave an approved one.
alter table sandbox_acquirer_authorizations
  add column initiator text,
  add column channel text,
  add column network_transaction_id text unique,
  add column previous_network_transaction_id text;
create index sandbox_acquirer_chains on sandbox_acquirer_authorizations (previous_network_transaction_id)
  where previous_network_transaction_id is not null;

-- A merchant's sandbox clock runs `ahead` of the database's own time. It only
-- ever moves forward; a merchant without a row runs on real time.
create table sandbox_clocks (
  merchant_id text primary key references merchants (id),
  ahead interval not null check (ahead >= interval '0'),
  updated_at timestamptz not null default now()
);

create table subscriptions (
  merchant_id text not null references merchants (id),
  id text not null,
  token text not null,
  -- copied from the token when the subscription was made, for listing by customer
  customer text,
  amount bigint not null check (amount > 0),
  currency text not null,
  interval_unit text not null check (interval_unit in ('day', 'week', 'month', 'year')),
  interval_count integer not null check (interval_count >= 1),
  -- period n is due at start_at + n × interval_count units, month ends clamped (server/subscriptions/calendar.ts)
  start_at timestamptz not null,
  reference text,
  status text not null check (status in ('active', 'past_due', 'unpaid', 'canceled')),
  -- the period to charge next (0: the first) and which try at it (0: on its date; 1–3: the retries)
  period integer not null default 0 check (period >= 0),
  attempt integer not null default 0 check (attempt between 0 and 3),
  -- when that try is due on the merchant's clock; null once unpaid or canceled
  next_charge_at timestamptz,
  -- the last period paid for
  current_period_start timestamptz,
  current_period_end timestamptz,
  latest_payment text,
  -- a worker charging the subscription holds it until then; one that died lets go when it passes
  claimed_until timestamptz not null default '-infinity',
  canceled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (merchant_id, id),
  foreign key (merchant_id, token) references tokens (merchant_id, token),
  check ((next_charge_at is null) = (status in ('unpaid', 'canceled')))
);
create index subscriptions_created_at on subscriptions (merchant_id, created_at desc, id desc);
create index subscriptions_customer on subscriptions (merchant_id, customer, created_at desc, id desc) where customer is not null;
create index subscriptions_token on subscriptions (merchant_id, token, created_at desc, id desc);
-- What is due: every merchant's (real time), and one merchant's (its clock).
create index subscriptions_due on subscriptions (next_charge_at) where status in ('active', 'past_due');
create index subscriptions_merchant_due on subscriptions (merchant_id, next_charge_at) where status in ('active', 'past_due');

-- Every try at charging a period, once: its key is (subscription, period,
-- attempt), so a crashed or second worker that tries again records nothing
-- twice, and a period is paid at most once.
create table subscription_charges (
  merchant_id text not null,
  subscription_id text not null,
  period integer not null,
  attempt integer not null check (attempt between 0 and 3),
  -- the try's date on the merchant's clock
  due_at timestamptz not null,
  -- null when no payment could be made (the token was deleted)
  payment_id text,
  outcome text not null check (outcome in ('succeeded', 'failed')),
  failure_code text,
  created_at timestamptz not null default now(),
  primary key (merchant_id, subscription_id, period, attempt),
  foreign key (merchant_id, subscription_id) references subscriptions (merchant_id, id)
);
create unique index subscription_charges_paid on subscription_charges (merchant_id, subscription_id, period) where outcome = 'succeeded';
create index subscription_charges_due_at on subscription_charges (merchant_id, due_at);
