-- tessera_network_token_background: a merchant with `network_tokens` on gets
-- a network token requested for every new reusable token, in the background
-- (api.md): when the token.created event goes in, a pending network token and
-- its `network_token.provision` job go in with it, in the same transaction —
-- so the tokenize answer waits for no token service, and a token committed
-- is never left without its request.
--
-- A vault process that provisions in memory (tessera_create_token with
-- p_network_token_in_memory) sets `tessera.network_token_in_memory`: then
-- no job goes in, the row carries `provisioning_since`, and its id is left in
-- `tessera.background_network_token` for tessera_create_token to answer; the
-- job sweep hands it to a job if it is still pending a lease later
-- (server/network-tokens/service.ts, `provisionInBackground`).
--
-- A token batch sets `tessera.defer_network_tokens` in its chunks'
-- transactions: it requests its items' network tokens itself once all are
-- tokenized, spread across issuers (server/network-tokens/service.ts).

create or replace function tessera_network_token_background() returns trigger
language plpgsql
as $$
declare
  v_id text;
  v_in_memory boolean := coalesce(current_setting('tessera.network_token_in_memory', true), '') = 'on';
begin
  -- Most merchants have network tokens off: one index probe answers them, before any id is drawn or insert planned.
  if coalesce(current_setting('tessera.defer_network_tokens', true), '') = 'on'
     or not exists (select 1 from merchants where id = new.merchant_id and network_tokens) then
    return null;
  end if;
  v_id := 'ntok_' || replace(gen_random_uuid()::text, '-', '');
  insert into network_tokens (id, merchant_id, token, network, status, requested_by, actor, client_ip, request_id, provisioning_since)
  select v_id, t.merchant_id, t.token, case t.brand when 'american-express' then 'amex' else t.brand end, 'pending', 'background', new.actor, new.client_ip, new.request_id,
         case when v_in_memory then now() end
    from tokens t join merchants m on m.id = t.merchant_id
   where t.merchant_id = new.merchant_id and t.token = new.token and t.reusable and m.network_tokens
     and t.brand in ('visa', 'mastercard', 'american-express');
  if found then
    if v_in_memory then
      perform set_config('tessera.background_network_token', v_id, true);
    else
      perform tessera_enqueue_job('network_token.provision', v_id, jsonb_build_object('network_token', v_id), 0, 10);
    end if;
  end if;
  return null;
end;
$$;

drop trigger if exists audit_events_network_token on audit_events;
create trigger audit_events_network_token after insert on audit_events
  for each row when (new.event_type = 'token.created' and new.merchant_id is not null and new.token is not null)
  execute function tessera_network_token_background();
