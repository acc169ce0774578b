-- Events and webhooks (api.md, "Events and webhooks"). The audit log and the
-- event stream are one log: an audit entry that records a state change the
-- merchant may act on carries its event type and the object as the change
-- left it (never card data), written in the same transaction as the change.

alter table audit_events
  -- 'payment.captured', 'token.created', …; null for reads and failures (audit-only)
  add column event_type text,
  -- the object after the change, as the vault's record of it (rendered into the API's shape on the way out)
  add column data jsonb;
create index audit_events_events on audit_events (merchant_id, seq desc) where event_type is not null;

-- Where a merchant wants its events sent.
create table webhook_endpoints (
  id text primary key,
  merchant_id text not null references merchants (id),
  url text not null,
  -- event types or patterns: 'payment.*', 'token_batch.completed', '*'
  events text[] not null,
  disabled boolean not null default false,
  -- why it was disabled: 'merchant' (PATCH) or 'gone' (the endpoint answered 410)
  disabled_reason text,
  -- the signing secret (whsec_…), wrapped under the master key; shown once when made
  secret_sealed bytea not null,
  -- the secret it replaced, which keeps signing alongside until previous_secret_expires_at
  previous_secret_sealed bytea,
  previous_secret_expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_endpoints_merchant on webhook_endpoints (merchant_id, created_at desc, id desc);

-- One event to one endpoint: created with the event (same transaction), then
-- attempted by the job queue until delivered or failed.
create table webhook_deliveries (
  id text primary key,
  merchant_id text not null references merchants (id),
  endpoint_id text not null references webhook_endpoints (id) on delete cascade,
  event_id text not null references audit_events (id),
  state text not null check (state in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (endpoint_id, event_id)
);
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, created_at desc, id desc);

-- Every attempt of a delivery: when, what came back, how long it took.
create table webhook_attempts (
  delivery_id text not null references webhook_deliveries (id) on delete cascade,
  attempt integer not null,
  attempted_at timestamptz not null default now(),
  -- the HTTP status, or null when none came back (refused address, timeout, connection error)
  status_code integer,
  latency_ms integer not null,
  -- a fixed short sentence, never the response body
  error text,
  primary key (delivery_id, attempt)
);
