-- tessera_enqueue_job: writes a job in the caller's transaction, so it
-- commits or rolls back with the change that causes it, and wakes the
-- runners of every vault process when it commits (pg_notify is delivered at
-- commit, never on rollback). The notification's payload is the job's kind,
-- then a space and the enqueuing connection's application_name when it has
-- one (a vault process's pool: `tessera-vault/…`), so the runner of a kind
-- that wants only its own process's jobs can tell them apart
-- (server/jobs/runner.ts, `ownNotifications`). Returns the job's id, or null when a job of
-- this kind and key still exists. The one way into the `jobs` table: the
-- queue's TypeScript (server/jobs/queue.ts) and SQL triggers both call it.

create or replace function tessera_enqueue_job(
  p_kind text,
  p_key text,
  p_payload jsonb,
  p_delay_ms double precision,
  p_max_attempts integer
) returns bigint
language plpgsql
as $$
declare
  v_id bigint;
begin
  insert into jobs (kind, key, payload, run_at, max_attempts)
  values (p_kind, p_key, coalesce(p_payload, '{}'), now() + p_delay_ms * interval '1 millisecond', p_max_attempts)
  on conflict (kind, key) where key is not null do nothing
  returning id into v_id;
  if v_id is not null then
    perform pg_notify('tessera_jobs', p_kind || coalesce(' ' || nullif(current_setting('application_name', true), ''), ''));
  end if;
  return v_id;
end;
$$;
