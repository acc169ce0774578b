-- tessera_claim_jobs: claims up to p_limit due jobs of p_kind, oldest first,
-- for p_lease_ms, and answers them (server/jobs/queue.ts, claimJobs).
-- `skip locked` lets several vault processes claim at once without waiting
-- on each other or taking the same row; the attempt is counted here, so a
-- worker that dies mid-job has still used one.
--
-- A function, planned once per connection and never by scanning a table
-- (`plan_cache_mode = force_generic_plan`, `enable_seqscan = off`): every
-- runner claims every few tens of milliseconds while its kind is busy, and
-- as plain text PGlite parsed and planned it each time: a claim of one job
-- held its one thread 1.0 ms, against 0.38 now, in front of the
-- tokenizations waiting on it. A generic plan made while `jobs` was small
-- could scan it, and keep scanning as it grows (PGlite never runs ANALYZE);
-- without scans it walks `jobs_due` from the start (docs/benchmarks.md,
-- "Background statements planned once").

create or replace function tessera_claim_jobs(p_kind text, p_limit integer, p_owner text, p_lease_ms double precision)
returns table (id text, kind text, key text, payload text, attempts integer, max_attempts integer, claim text)
language plpgsql
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
begin
  return query
    with due as (
      select d.id from jobs d
       where d.state = 'pending' and d.kind = p_kind and d.run_at <= now()
       order by d.run_at, d.id
       limit p_limit
       for update skip locked)
    update jobs j
       set state = 'running', attempts = j.attempts + 1, claim = gen_random_uuid(), claimed_by = p_owner,
           lease_expires_at = now() + p_lease_ms * interval '1 millisecond', updated_at = now()
      from due
     where j.id = due.id
    returning j.id::text, j.kind, j.key, j.payload::text, j.attempts, j.max_attempts, j.claim::text;
end;
$$;
