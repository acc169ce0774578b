-- The demo shop's own data: shoppers, sessions, carts, orders and the cards
-- they saved. Card data never comes here: a saved card is a vault token name.

create table users (
  id text primary key,                    -- usr_…, also the `customer` on the shopper's tokens
  email text not null unique,             -- stored lower-cased
  password_hash text not null,            -- scrypt$N$r$p$salt$hash
  default_card text,                      -- saved_cards.id preselected at checkout
  created_at timestamptz not null default now()
);

create table sessions (
  id text primary key,                    -- SHA-256 of the cookie value, so a database dump opens no session
  user_id text references users (id) on delete cascade,
  dashboard boolean not null default false,
  expires_at timestamptz not null,
  created_at timestamptz not null default now()
);

create table cart_items (
  session_id text not null references sessions (id) on delete cascade,
  product_id text not null,
  quantity integer not null check (quantity between 1 and 20),
  primary key (session_id, product_id)
);

create table saved_cards (
  id text primary key,                    -- card_…, what the shop's pages name the card by
  token text not null unique,             -- the vault's reusable token, which stays on the server
  user_id text not null references users (id) on delete cascade,
  created_at timestamptz not null default now()
);
create index saved_cards_user on saved_cards (user_id, created_at);

create table orders (
  id text primary key,                    -- ord_…, the payment's `reference` at the vault
  session_id text,                        -- the cart it was made from, while it waits for payment
  user_id text references users (id),
  items jsonb not null,                   -- [{product_id, name, quantity, amount}]
  amount integer not null,
  currency text not null,
  status text not null,                   -- awaiting_payment, then the vault payment's status
  payment_id text,
  card_brand text,
  card_last4 text,
  card_saved boolean not null default false,
  attempts integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index orders_session on orders (session_id) where status = 'awaiting_payment';

-- Each try to pay an order: its number makes the Idempotency-Key.
create table payment_attempts (
  order_id text not null references orders (id),
  attempt integer not null,
  token text not null,
  outcome text not null,                  -- sent, authorized, captured, declined, failed, unknown
  decline_code text,
  payment_id text,
  created_at timestamptz not null default now(),
  primary key (order_id, attempt)
);

create table settings (
  name text primary key,
  value jsonb not null
);
insert into settings (name, value) values ('capture_at_checkout', 'true');
