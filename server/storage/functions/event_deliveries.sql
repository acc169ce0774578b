-- tessera_event_deliveries: an event is written with its deliveries. When an
-- audit entry that is an event goes in, one delivery for each of the
-- merchant's enabled webhook endpoints subscribed to its type goes in with
-- it, each with its job (webhook.deliver): the transactional outbox — no
-- change without its event, no event without its deliveries.
--
-- An AFTER trigger, so it runs once the entry holds its chain's lock (the
-- last lock of the transaction): it only inserts new rows and reads the
-- endpoints without locking them, so it waits for nobody.

create or replace function tessera_event_deliveries() returns trigger
language plpgsql
as $$
declare
  v_endpoint record;
  v_delivery text;
begin
  for v_endpoint in
    select id from webhook_endpoints
     where merchant_id = new.merchant_id and not disabled
       and exists (
         select 1 from unnest(events) as pattern
          where pattern = '*' or pattern = new.event_type
             or (right(pattern, 2) = '.*' and starts_with(new.event_type, left(pattern, -1)))
       )
  loop
    v_delivery := 'whd_' || replace(gen_random_uuid()::text, '-', '');
    insert into webhook_deliveries (id, merchant_id, endpoint_id, event_id, state)
    values (v_delivery, new.merchant_id, v_endpoint.id, new.id, 'pending');
    -- The delivery job decides when a delivery has been tried enough (the retry schedule), not the queue.
    perform tessera_enqueue_job('webhook.deliver', v_delivery, jsonb_build_object('delivery', v_delivery), 0, 1000);
  end loop;
  return null;
end;
$$;

drop trigger if exists audit_events_deliveries on audit_events;
create trigger audit_events_deliveries after insert on audit_events
  for each row when (new.event_type is not null and new.merchant_id is not null)
  execute function tessera_event_deliveries();
