-- The vault's events, as its signed webhooks delivered them: each one once,
-- by its `webhook-id` (the event id, the same on every retry), with what the
-- shop did about it. The endpoint's signing secret is not here: it is in
-- <DEMO_DATA_DIR>/webhook-endpoint.json (mode 0600), like the secret key.
create table webhook_events (
  id text primary key,                    -- evt_…: the webhook-id, so a second delivery of an event finds its row
  type text not null,                     -- payment.captured, token.deleted, …
  object_id text,                         -- the payment or token the event is about
  payload jsonb not null,                 -- the event as signed by the vault (payments and tokens carry brand and last 4, never card data)
  created_at timestamptz not null,        -- when the vault made the event
  received_at timestamptz not null default now(),
  effect text                             -- what the shop changed because of it, for the dashboard ("order ord_… captured"); null: nothing
);
create index webhook_events_received on webhook_events (received_at);
