-- tessera_settle_network_tokens: writes the token services' final answers
-- for a group of network tokens in one statement (server/network-tokens/
-- service.ts settles them in groups): on PGlite's one connection a
-- settlement holds the database for one statement, not a transaction of
-- round trips. For each item, in the order given:
--
-- - its job is completed by its claim (p_settlements[].job_id, .claim); a
--   claim that is gone leaves the item alone (`done` false) for the job's
--   next claim, and the others settle;
-- - its row gets the answer once (`settled_at`): metadata, the DPAN sealed
--   (hex) for an active or suspended token; `deleted` instead when its vault
--   token was deleted meanwhile, and a token the network gave it that the
--   vault settled without (deleted, declined) gets a `network_token.delete`
--   job;
-- - its `network_token.created` event (audit id .event_id) goes in last,
--   after every item's row, except for a deleted one (nothing happened the
--   merchant needs to hear of).
--
-- Locks, in the order every settlement takes them: the batches' rows, the
-- vault tokens' rows (shared: a token's delete waits for this, then deletes
-- the network token; a delete that came first makes it `deleted`), the jobs'
-- and network tokens' rows, and the audit chain last. Answers a jsonb array:
-- per item {id, done, record}, record being the network token as settled
-- now, or null (settled before, or not done).

create or replace function tessera_settle_network_tokens(p_settlements jsonb) returns jsonb
language plpgsql
as $$
declare
  v_item record;
  v_readable boolean;
  v_done boolean;
  v_status text;
  v_keep boolean;
  v_row network_tokens%rowtype;
  v_record jsonb;
  v_answers jsonb := '[]'::jsonb;
  v_events jsonb := '[]'::jsonb;
begin
  perform 1 from token_batches b
   where b.id in (select n.batch_id from network_tokens n
                   where n.id in (select s.id from jsonb_to_recordset(p_settlements) as s(id text)))
   order by b.id
     for update;
  perform 1 from tokens t join network_tokens n on n.merchant_id = t.merchant_id and n.token = t.token
   where n.id in (select s.id from jsonb_to_recordset(p_settlements) as s(id text))
   order by t.merchant_id, t.token
     for share of t;

  for v_item in
    select * from jsonb_to_recordset(p_settlements) as s(
      id text, job_id bigint, claim uuid, event_id text, answered boolean, status text, token_id text, token_last4 text,
      token_exp_month integer, token_exp_year integer, pan_last4 text, par text, card_art_id text, issuer_name text,
      dpan_sealed text, dpan_key_sealed text, data_key_version integer)
  loop
    v_done := v_item.job_id is null or tessera_complete_job(v_item.job_id, v_item.claim);
    v_record := null;
    if v_done and v_item.answered then
      select tessera_token_readable(t) into v_readable
        from network_tokens n join tokens t on t.merchant_id = n.merchant_id and t.token = n.token
       where n.id = v_item.id;
      v_status := case when v_readable then v_item.status else 'deleted' end;
      -- Only a token that can pay keeps its number.
      v_keep := v_status in ('active', 'suspended');
      update network_tokens n
         set status = v_status, token_id = coalesce(v_item.token_id, n.token_id), token_last4 = coalesce(v_item.token_last4, n.token_last4),
             token_exp_month = coalesce(v_item.token_exp_month, n.token_exp_month), token_exp_year = coalesce(v_item.token_exp_year, n.token_exp_year),
             pan_last4 = coalesce(v_item.pan_last4, n.pan_last4), par = coalesce(v_item.par, n.par),
             card_art_id = coalesce(v_item.card_art_id, n.card_art_id), issuer_name = coalesce(v_item.issuer_name, n.issuer_name),
             dpan_sealed = case when v_keep then decode(v_item.dpan_sealed, 'hex') end,
             dpan_key_sealed = case when v_keep then decode(v_item.dpan_key_sealed, 'hex') end,
             data_key_version = case when v_keep then v_item.data_key_version end,
             settled_at = now(), updated_at = now()
       where n.id = v_item.id and n.settled_at is null
      returning n.* into v_row;
      if found then
        v_record := jsonb_build_object(
          'id', v_row.id, 'merchant_id', v_row.merchant_id, 'token', v_row.token, 'network', v_row.network, 'status', v_row.status,
          'token_id', v_row.token_id, 'token_last4', v_row.token_last4, 'token_exp_month', v_row.token_exp_month,
          'token_exp_year', v_row.token_exp_year, 'pan_last4', v_row.pan_last4, 'par', v_row.par, 'card_art_id', v_row.card_art_id,
          'issuer_name', v_row.issuer_name, 'correlation_id', v_row.correlation_id, 'created_at', v_row.created_at,
          'updated_at', v_row.updated_at);
        if v_row.token_id is not null and v_row.status in ('deleted', 'declined') then
          perform tessera_enqueue_job('network_token.delete', v_row.id, jsonb_build_object('network_token', v_row.id), 0, 10);
        end if;
        if v_row.status <> 'deleted' then
          v_events := v_events || jsonb_build_array(jsonb_build_object(
            'id', v_item.event_id, 'merchant_id', v_row.merchant_id, 'actor', v_row.actor, 'token', v_row.token,
            'client_ip', coalesce(v_row.client_ip, ''), 'request_id', coalesce(v_row.request_id, ''), 'data', v_record));
        end if;
      end if;
    end if;
    v_answers := v_answers || jsonb_build_array(jsonb_build_object('id', v_item.id, 'done', v_done, 'record', v_record));
  end loop;

  insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
  select e.id, e.merchant_id, e.actor, 'network_token.created', 'succeeded', e.token, e.client_ip, e.request_id, 'network_token.created', e.data
    from rows from (jsonb_to_recordset(v_events) as (id text, merchant_id text, actor text, token text, client_ip text, request_id text, data jsonb))
         with ordinality as e(id, merchant_id, actor, token, client_ip, request_id, data, n)
   order by e.n;
  return v_answers;
end;
$$;
