-- Subscriptions to the shop's plans. The vault keeps each one's calendar and
-- charges it; the shop keeps whose it is and how it began.
create table subscriptions (
  id text primary key,                    -- the vault's sub_…
  user_id text not null references users (id),
  plan_id text not null,
  token text not null,                    -- the saved card it charges (also in saved_cards)
  first_payment_id text not null,         -- the checkout payment that paid the first period and set up the card's stored credential
  card_brand text not null,
  card_last4 text not null,
  created_at timestamptz not null default now()
);
create index subscriptions_user on subscriptions (user_id, created_at desc);
