-- The counters behind the shop's limits on card testing and password
-- guessing. They are rows in this database rather than memory, so restarting
-- the shop does not hand an attacker a fresh allowance.

-- Each authorization the shop asks the vault for on a shopper's behalf: a
-- payment attempt on an order, or the verification of a card saved without a
-- purchase. Counted per order, per session and per client within a window.
create table card_attempts (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('payment', 'verification')),
  order_id text references orders (id),
  session_id text not null,               -- sessions.id; moved to the new session when the shopper signs in, as the cart is
  client text not null,                   -- the client's IP address (for IPv6, its /64 network)
  outcome text not null default 'sent',   -- sent, approved, declined, failed, unknown, vault_rate_limited (not counted)
  created_at timestamptz not null default now()
);
create index card_attempts_order on card_attempts (order_id, created_at) where order_id is not null;
create index card_attempts_session on card_attempts (session_id, created_at);
create index card_attempts_client on card_attempts (client, created_at);
create index card_attempts_created on card_attempts (created_at);

-- Failed sign-ins in a row, per e-mail address (known or not), per client,
-- and per client at the dashboard; a lock grows with each failure past the
-- allowance.
create table login_failures (
  key text primary key,                   -- SHA-256 of `email:<address>`, `client:<ip>` or `dashboard:<ip>`: never what was typed
  failures integer not null,
  last_failed_at timestamptz not null,
  locked_until timestamptz
);
create index login_failures_last on login_failures (last_failed_at);
