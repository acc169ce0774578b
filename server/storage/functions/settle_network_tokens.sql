-- tessera_settle_network_tokens: writes the token services' final answers
-- for a group of network tokens in one statement (server/network-tokens/
-- service.ts settles them in groups): on PGlite's one connection a
-- settlement holds the database for one statement, not a transaction of
-- round trips; and within it a statement for the whole group at each step,
-- not a loop of statements per item (each costs PGlite's thread about what
-- a tokenization's does). For each item, in the order given:
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
--
-- Every read of network_tokens, tokens and jobs goes through the group's keys
-- as arrays (`= any(v_ids)`, an index probe each), never a join against
-- jsonb_to_recordset: the planner counts 100 rows for that function whatever
-- the group holds, and chose a hash join over a scan of the whole table —
-- each settlement read every network token ever made (on PGlite, which has
-- no autovacuum to refresh its statistics, ~50 ms a statement at 20,000).
--
-- Planned once, and never by scanning a table (`plan_cache_mode =
-- force_generic_plan`, `enable_seqscan = off`, for this function and the
-- triggers its writes fire). A generic plan made while the tables were small
-- scans them, and keeps scanning as they grow (PGlite never runs ANALYZE to
-- invalidate it): with PL/pgSQL's default, which keeps a statement's generic
-- plan after its fifth run, a settlement's cost per token grew from 0.9 to
-- 2.2 ms over six minutes of provisioning (~30,000 network tokens). Planned
-- afresh at every call instead (`force_custom_plan`, until 2026-12-04), it
-- stayed flat but paid the planning of every statement here and in the
-- audit triggers at every call and every entry: 3.3 ms a settlement and 0.5
-- a token on PGlite's thread, against 1.0 and 0.2 now, flat from 1,000 to
-- 11,000 network tokens with its plans made at 40 (docs/benchmarks.md,
-- "Settlements planned once").

create or replace function tessera_settle_network_tokens(p_settlements jsonb) returns jsonb
language plpgsql
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
declare
  v_ids text[];
  v_job_ids bigint[];
  v_done bigint[];
  v_settled jsonb;
begin
  select array_agg(s.id), array_agg(s.job_id) filter (where s.job_id is not null) into v_ids, v_job_ids
    from jsonb_to_recordset(p_settlements) as s(id text, job_id bigint);

  perform 1 from token_batches b
   where b.id in (select n.batch_id from network_tokens n where n.id = any(v_ids) and n.batch_id is not null)
   order by b.id
     for update;
  perform 1 from network_tokens n join tokens t on t.merchant_id = n.merchant_id and t.token = n.token
   where n.id = any(v_ids)
   order by t.merchant_id, t.token
     for share of t;

  -- The jobs whose claims still hold, completed (tessera_complete_job's change, for the group at once, in job order).
  with claimed as (
    select j.id from jobs j join jsonb_to_recordset(p_settlements) as s(job_id bigint, claim uuid) on j.id = s.job_id and j.claim = s.claim
     where j.id = any(v_job_ids) and j.state = 'running'
     order by j.id
       for update of j
  ), completed as (
    update jobs j set state = 'done', claim = null, lease_expires_at = null, finished_at = now(), updated_at = now()
      from claimed where j.id = claimed.id
    returning j.id
  )
  select coalesce(array_agg(id), '{}') into v_done from completed;

  with items as (
    select s.*, s.job_id is null or s.job_id = any(v_done) as done
      from rows from (jsonb_to_recordset(p_settlements) as (
        id text, job_id bigint, claim uuid, event_id text, answered boolean, status text, token_id text, token_last4 text,
        token_exp_month integer, token_exp_year integer, pan_last4 text, par text, card_art_id text, issuer_name text,
        dpan_sealed text, dpan_key_sealed text, data_key_version integer)) with ordinality as s(
        id, job_id, claim, event_id, answered, status, token_id, token_last4, token_exp_month, token_exp_year, pan_last4, par, card_art_id,
        issuer_name, dpan_sealed, dpan_key_sealed, data_key_version, n)
  ), answers as (
    -- `deleted` instead when the vault token was deleted meanwhile; only a token that can pay keeps its number.
    select i.*, case when tessera_token_readable(t) then i.status else 'deleted' end as final_status
      from network_tokens n
      join items i on i.id = n.id
      join tokens t on t.merchant_id = n.merchant_id and t.token = n.token
     where n.id = any(v_ids) and i.done and i.answered
  ), settled as (
    update network_tokens n
       set status = a.final_status, token_id = coalesce(a.token_id, n.token_id), token_last4 = coalesce(a.token_last4, n.token_last4),
           token_exp_month = coalesce(a.token_exp_month, n.token_exp_month), token_exp_year = coalesce(a.token_exp_year, n.token_exp_year),
           pan_last4 = coalesce(a.pan_last4, n.pan_last4), par = coalesce(a.par, n.par),
           card_art_id = coalesce(a.card_art_id, n.card_art_id), issuer_name = coalesce(a.issuer_name, n.issuer_name),
           dpan_sealed = case when a.final_status in ('active', 'suspended') then decode(a.dpan_sealed, 'hex') end,
           dpan_key_sealed = case when a.final_status in ('active', 'suspended') then decode(a.dpan_key_sealed, 'hex') end,
           data_key_version = case when a.final_status in ('active', 'suspended') then a.data_key_version end,
           settled_at = now(), updated_at = now()
      from answers a
     where n.id = any(v_ids) and n.id = a.id and n.settled_at is null
    returning n.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'n', i.n, 'id', i.id, 'done', i.done, 'event_id', i.event_id,
           'actor', s.actor, 'client_ip', coalesce(s.client_ip, ''), 'request_id', coalesce(s.request_id, ''),
           'delete_at_network', s.token_id is not null and s.status in ('deleted', 'declined'),
           'record', case when s.id is null then null else jsonb_build_object(
             'id', s.id, 'merchant_id', s.merchant_id, 'token', s.token, 'network', s.network, 'status', s.status,
             'token_id', s.token_id, 'token_last4', s.token_last4, 'token_exp_month', s.token_exp_month,
             'token_exp_year', s.token_exp_year, 'pan_last4', s.pan_last4, 'par', s.par, 'card_art_id', s.card_art_id,
             'issuer_name', s.issuer_name, 'correlation_id', s.correlation_id, 'created_at', s.created_at,
             'updated_at', s.updated_at) end)
         order by i.n), '[]')
    into v_settled
    from items i left join settled s on s.id = i.id;

  -- A token the network gave that the vault settled without (deleted, declined) is deleted at the network.
  perform tessera_enqueue_job('network_token.delete', e.id, jsonb_build_object('network_token', e.id), 0, 10)
     from jsonb_to_recordset(v_settled) as e(id text, delete_at_network boolean)
    where e.delete_at_network;

  -- The events last, in the items' order, except for a deleted token's (nothing happened the merchant needs to hear of).
  insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
  select e.event_id, e.record ->> 'merchant_id', e.actor, 'network_token.created', 'succeeded', e.record ->> 'token', e.client_ip, e.request_id,
         'network_token.created', e.record
    from jsonb_to_recordset(v_settled) as e(n bigint, event_id text, actor text, client_ip text, request_id text, record jsonb)
   where e.record is not null and e.record ->> 'status' <> 'deleted'
   order by e.n;

  return (select coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'done', e.done, 'record', e.record) order by e.n), '[]')
            from jsonb_to_recordset(v_settled) as e(n bigint, id text, done boolean, record jsonb));
end;
$$;
