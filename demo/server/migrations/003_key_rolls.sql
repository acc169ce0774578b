-- The secret key rolls asked for on the dashboard. The key itself is never
-- here (it is in <DEMO_DATA_DIR>/vault-secret-key, mode 0600): only what it
-- takes to ask the vault again for a roll whose answer never came, with the
-- same Idempotency-Key, and what the dashboard shows.
create table key_rolls (
  id text primary key,                    -- roll_…; the roll's Idempotency-Key is `key-roll-<id>`
  expires_in integer not null check (expires_in between 0 and 604800),  -- how long the previous keys keep working, in seconds
  status text not null default 'pending' check (status in ('pending', 'done', 'failed')),
  previous_keys_expire_at timestamptz,    -- the vault's answer, once it came
  requested_at timestamptz not null default now(),
  completed_at timestamptz
);
create index key_rolls_pending on key_rolls (requested_at) where status = 'pending';
