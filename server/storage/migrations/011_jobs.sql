-- Durable background work (server/jobs/): a job is a row, written in the
-- transaction of the change that causes it, claimed by one vault process at
-- a time under a lease, retried with backoff, dead after its last attempt.
-- The statements that move a job between states are in server/jobs/queue.ts.

create table jobs (
  id bigint generated always as identity primary key,
  -- what to do: a handler registered under this name (e.g. 'webhook.deliver')
  kind text not null check (kind ~ '^[a-z][a-z0-9_.-]{0,63}$'),
  -- set by the enqueuer to make a second enqueue of the same work a no-op
  key text check (length(key) <= 200),
  -- never card data: this column is stored as it is
  payload jsonb not null default '{}',
  state text not null default 'pending' check (state in ('pending', 'running', 'done', 'dead')),
  -- claims so far, the running one included: a claim whose worker died counts
  attempts integer not null default 0,
  max_attempts integer not null default 10 check (max_attempts between 1 and 1000),
  -- not claimed before this (database time, so nodes with skewed clocks agree)
  run_at timestamptz not null default now(),
  -- the current claim while running: its id, which process holds it, until when
  claim uuid,
  claimed_by text,
  lease_expires_at timestamptz,
  -- the last failure's error name and message, card-number-like digits masked
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  check ((state = 'running') = (claim is not null and lease_expires_at is not null))
);

-- Dedupe: one job per (kind, key) while its row exists (done rows live for the retention).
create unique index jobs_kind_key on jobs (kind, key) where key is not null;
-- The claim: the oldest due job of a kind.
create index jobs_due on jobs (kind, run_at, id) where state = 'pending';
-- The sweeper: leases that ran out.
create index jobs_leases on jobs (lease_expires_at) where state = 'running';
-- Retention: done jobs past their time.
create index jobs_done on jobs (finished_at) where state = 'done';
