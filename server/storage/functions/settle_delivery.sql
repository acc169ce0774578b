-- tessera_settle_delivery: records a webhook delivery's attempt and where
-- the delivery stands, in one statement (one round trip, one commit), and
-- with p_job_id completes its `webhook.deliver` job in that same statement,
-- so a recorded final state and the job's completion commit together and a
-- recorded delivery is never sent again. A claim that is gone raises TV010
-- (job_claim_lost), which rolls the attempt back too: the job's next claim
-- sends again (server/webhooks/deliveries.ts).

create or replace function tessera_settle_delivery(
  p_delivery_id text,
  p_endpoint_id text,
  p_state text,
  -- the attempt's number, or null when no attempt was made (a disabled endpoint)
  p_attempt integer,
  p_status_code integer,
  p_latency_ms integer,
  p_error text,
  -- when the next attempt is due, from now; null for a final state
  p_next_in_ms double precision,
  p_disable_endpoint boolean,
  p_job_id bigint,
  p_job_claim uuid
) returns void
language plpgsql
as $$
begin
  if p_attempt is not null then
    insert into webhook_attempts (delivery_id, attempt, status_code, latency_ms, error)
    values (p_delivery_id, p_attempt, p_status_code, p_latency_ms, p_error)
    on conflict (delivery_id, attempt) do nothing;
  end if;
  update webhook_deliveries
     set state = p_state, attempts = greatest(attempts, coalesce(p_attempt, 0)),
         next_attempt_at = case when p_next_in_ms is null then null else now() + p_next_in_ms * interval '1 millisecond' end,
         updated_at = now()
   where id = p_delivery_id;
  if p_disable_endpoint then
    update webhook_endpoints set disabled = true, disabled_reason = 'gone', updated_at = now() where id = p_endpoint_id;
  end if;
  if p_job_id is not null and not tessera_complete_job(p_job_id, p_job_claim) then
    raise exception 'job % lost its claim', p_job_id using errcode = 'TV010';
  end if;
end;
$$;
