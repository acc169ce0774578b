-- Request counters every vault process on one database shares (issue #14):
-- the card fields' per-minute limits per client IP and per publishable key,
-- and failed authentications per client network (server/http/counters.ts).
-- One row per key, reset in place when its window has ended, and removed by
-- housekeeping once ended. Windows are judged by the database's clock.
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
