-- tessera_settle_deliveries: records webhook deliveries' attempts and where
-- each delivery stands, several deliveries in one statement (one round trip,
-- one commit: under load the delivery job settles what finished meanwhile
-- together, server/webhooks/deliveries.ts). An entry with a job completes
-- that `webhook.deliver` job in the same statement, so a recorded final
-- state and the job's completion commit together and a recorded delivery is
-- never sent again. An entry whose claim is gone changes nothing — its job
-- is completed first, and when that answers false nothing of the entry is
-- written — and its job id is in the answer (job_claim_lost for its caller):
-- the job's next claim sends again. The other entries are settled.
--
-- p_settlements: a JSON array of
--   {delivery_id, endpoint_id, state,
--    attempt      -- the attempt's number, or null when none was made (a disabled endpoint)
--    status_code, latency_ms, error,
--    next_in_ms   -- when the next attempt is due, from now; null for a final state
--    disable_endpoint, job_id, job_claim}

create or replace function tessera_settle_deliveries(p_settlements jsonb) returns text[]
language plpgsql
as $$
declare
  s record;
  v_lost text[] := '{}';
begin
  for s in
    select * from jsonb_to_recordset(p_settlements) as x(
      delivery_id text, endpoint_id text, state text, attempt integer, status_code integer, latency_ms integer, error text,
      next_in_ms double precision, disable_endpoint boolean, job_id bigint, job_claim uuid)
  loop
    if s.job_id is not null and not tessera_complete_job(s.job_id, s.job_claim) then
      v_lost := v_lost || s.job_id::text;
      continue;
    end if;
    if s.attempt is not null then
      insert into webhook_attempts (delivery_id, attempt, status_code, latency_ms, error)
      values (s.delivery_id, s.attempt, s.status_code, s.latency_ms, s.error)
      on conflict (delivery_id, attempt) do nothing;
    end if;
    update webhook_deliveries
       set state = s.state, attempts = greatest(attempts, coalesce(s.attempt, 0)),
           next_attempt_at = case when s.next_in_ms is null then null else now() + s.next_in_ms * interval '1 millisecond' end,
           updated_at = now()
     where id = s.delivery_id;
    if coalesce(s.disable_endpoint, false) then
      update webhook_endpoints set disabled = true, disabled_reason = 'gone', updated_at = now() where id = s.endpoint_id;
    end if;
  end loop;
  return v_lost;
end;
$$;
