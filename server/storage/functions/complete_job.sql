-- tessera_complete_job: marks a claimed job done, in the caller's
-- transaction (or statement), so it commits with the job's effects. False
-- when the claim is gone (its lease ran out and the sweeper took the job
-- back): nothing changed. The queue's TypeScript (server/jobs/queue.ts) and
-- the functions that settle a job's work in one statement (e.g.
-- tessera_settle_deliveries) all complete a job here.

create or replace function tessera_complete_job(p_id bigint, p_claim uuid) returns boolean
language plpgsql
as $$
begin
  update jobs
     set state = 'done', claim = null, lease_expires_at = null, finished_at = now(), updated_at = now()
   where id = p_id and claim = p_claim and state = 'running';
  return found;
end;
$$;
