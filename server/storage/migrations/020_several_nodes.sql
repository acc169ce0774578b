-- Several vault nodes on one database (issue #14).
--
-- Request counters every vault process shares: the card fields' per-minute
-- limits per client IP and per publishable key, and failed authentications
-- per client network (server/http/counters.ts). One row per key, reset in
-- place when its window has ended, and removed by housekeeping once ended.
-- Windows are judged by the database's clock.
--
-- Unlogged: a count a database crash forgets only lets a client start its
-- window afresh, and a row written on every card-fields request should not
-- cost a WAL record each time. (PGlite has the table too, unused: its one
-- process counts in memory.)
create unlogged table rate_limit_counters (
  key text primary key,
  window_ends_at timestamptz not null,
  hits integer not null
);
create index rate_limit_counters_window_ends_at on rate_limit_counters (window_ends_at);

-- The vault processes that are alive: each renews its row every second
-- (server/storage/liveness.ts). A process whose lease ran out has died, and
-- the Idempotency-Key claims it held are taken over by the next retry at
-- once instead of after 60 seconds. Logged, unlike the counters: a database
-- crash must not forget which process held what (a claim whose holder is
-- unknown waits the 60 seconds).
create table vault_processes (
  id text primary key,
  alive_until timestamptz not null
);

-- Who holds a claim, and which claim it is: a request releases or parks
-- only its own claim, never one a retry has taken over since.
alter table idempotency_keys
  add column claimed_by text,
  add column claim_token text;
