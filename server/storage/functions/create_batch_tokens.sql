-- tessera_create_batch_tokens: writes a chunk of a token batch's items in one
-- call (one round trip, which on PGlite costs as much as the work), with the
-- outcome each item would have had through tessera_create_token, as a
-- merchant server's POST /v1/tokens.
--
-- First it locks the batch (one run of a batch at a time, even when a run
-- whose job lease ran out is still going) and, before any audit entry takes
-- the merchant's chain, every lock its items' tokenizations will take
-- (tessera_lock_cards). Items already processed (by such another run) are
-- skipped.
--
-- Then, with p_together, the items nothing can refuse or turn into another
-- token — a JWE and a card no other pending item of the chunk has, no replay
-- record, no live token of the card, a token name not taken — are written
-- together: their
-- replay records, tokens and token.created entries (in index order) one
-- statement each, without a subtransaction apiece (a migration's items are
-- nearly all of this kind). A replay record another transaction wrote
-- meanwhile refuses its item as tessera_create_token would. The other items
-- go through tessera_create_token one by one, in index order, each in a
-- subtransaction of its own so that a refusal (a replay, a declined
-- duplicate) is that item's outcome and the others go on; they share no
-- JWE and no card with the items written together, so the order between
-- the two kinds changes no outcome.
--
-- Answers {"<item_index>": outcome}: tessera_create_token's answer
-- ('created', or 'existing:<token>' with unique tokens, which the caller
-- refreshes in the same transaction), 'refused:<SQLSTATE>', or 'skipped'.

drop function if exists tessera_create_batch_tokens(text, text, boolean, jsonb, text, text, text);
create or replace function tessera_create_batch_tokens(
  p_batch_id text,
  p_merchant_id text,
  p_unique_tokens boolean,
  -- write the items nothing can refuse together (PGlite), or every item one by one (PostgreSQL: measured faster there)
  p_together boolean,
  -- one object per item: item_index, fingerprint and tessera_create_token's
  -- per-token arguments (server/tokens/create.ts, PreparedToken.batchItem)
  p_items jsonb,
  -- who submitted the batch, and from where: the items' audit entries name them
  p_actor text,
  p_client_ip text,
  p_request_id text
) returns jsonb
language plpgsql
as $$
declare
  v_pending integer[];
  v_clear integer[];
  v_written integer[];
  v_item jsonb;
  v_outcome text;
  v_outcomes jsonb := '{}'::jsonb;
begin
  perform 1 from token_batches where id = p_batch_id for update;

  -- Each item by its key: a plan kept for the session must not read the whole batch for every chunk.
  v_pending := array(
    select (i->>'item_index')::integer from jsonb_array_elements(p_items) as i
     where exists (select 1 from token_batch_items t
                    where t.batch_id = p_batch_id and t.item_index = (i->>'item_index')::integer and t.state = 'pending'));

  perform tessera_lock_cards(
    p_merchant_id,
    array(select i->>'fingerprint' from jsonb_array_elements(p_items) as i where (i->>'item_index')::integer = any(v_pending)),
    p_unique_tokens);

  v_clear := case when not p_together then '{}'::integer[] else array(
    select c.item_index
      from (select (i->>'item_index')::integer as item_index, i->>'token' as token,
                   decode(i->>'ciphertext_hash', 'hex') as hash, i->'card'->>'fingerprint' as fingerprint,
                   count(*) over (partition by i->>'ciphertext_hash') as same_jwe,
                   count(*) over (partition by i->'card'->>'fingerprint') as same_card
              from jsonb_array_elements(p_items) as i
             where (i->>'item_index')::integer = any(v_pending)) c
     where c.same_jwe = 1 and c.same_card = 1
       and not exists (select 1 from used_ciphertexts u where u.hash = c.hash)
       and not exists (select 1 from tokens t
                        where t.merchant_id = p_merchant_id and t.fingerprint = c.fingerprint and tessera_token_chargeable(t))
       and not exists (select 1 from tokens t where t.merchant_id = p_merchant_id and t.token = c.token)) end;

  if cardinality(v_clear) > 0 then
    -- A request's JWE recorded since the check (it waited for nothing of ours): refused below, as a replay.
    with recorded as (
      insert into used_ciphertexts (hash, expires_at)
      select decode(i->>'ciphertext_hash', 'hex'), (i->>'ciphertext_keep_until')::timestamptz
        from jsonb_array_elements(p_items) as i
       where (i->>'item_index')::integer = any(v_clear)
      on conflict (hash) do nothing
      returning hash
    )
    select array(select (i->>'item_index')::integer from jsonb_array_elements(p_items) as i
                  where (i->>'item_index')::integer = any(v_clear) and decode(i->>'ciphertext_hash', 'hex') in (select hash from recorded))
      into v_written;

    with made as (
      insert into tokens (merchant_id, token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
                          cardholder_name, fingerprint, card_sealed, card_key_sealed, data_key_version, cvc_sealed, cvc_bucket,
                          cvc_expires_at, expires_at, session_id, client_ip, created_at, updated_at, moto)
      select p_merchant_id, i->>'token', (i->>'reusable')::boolean, i->>'customer', (i->>'decline_duplicates')::boolean,
             c.brand, c.last4, c.exp_month, c.exp_year, c.cardholder_name, c.fingerprint, c.card_sealed, c.card_key_sealed,
             c.data_key_version, c.cvc_sealed, c.cvc_bucket, c.cvc_expires_at, (i->>'expires_at')::timestamptz, null, null,
             (i->>'created_at')::timestamptz, (i->>'created_at')::timestamptz, false
        from jsonb_array_elements(p_items) as i
             cross join lateral jsonb_populate_record(null::tessera_card_details, i->'card') as c
       where (i->>'item_index')::integer = any(v_written)
      -- Each token.created event's object, as its row went in.
      returning token, tessera_token_record(tokens)::jsonb as record
    )
    -- Last: an audit entry locks its merchant's chain until commit (audit_chain_link.sql); in index order.
    insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
    select i->>'audit_id', p_merchant_id, p_actor, 'token.created', 'succeeded', m.token, p_client_ip, p_request_id,
           'token.created', m.record
      from jsonb_array_elements(p_items) as i join made m on m.token = i->>'token'
     order by (i->>'item_index')::integer;
  end if;

  for v_item in select i from jsonb_array_elements(p_items) as i loop
    if not (v_item->>'item_index')::integer = any(v_pending) then
      v_outcome := 'skipped';
    elsif (v_item->>'item_index')::integer = any(v_written) then
      v_outcome := 'created';
    elsif (v_item->>'item_index')::integer = any(v_clear) then
      v_outcome := 'refused:TV001';
    else
      begin
        v_outcome := tessera_create_token(
          p_merchant_id => p_merchant_id,
          p_token => v_item->>'token',
          p_reusable => (v_item->>'reusable')::boolean,
          p_customer => v_item->>'customer',
          p_decline_duplicates => (v_item->>'decline_duplicates')::boolean,
          p_card => jsonb_populate_record(null::tessera_card_details, v_item->'card'),
          p_expires_at => (v_item->>'expires_at')::timestamptz,
          p_created_at => (v_item->>'created_at')::timestamptz,
          p_ciphertext_hash => decode(v_item->>'ciphertext_hash', 'hex'),
          p_ciphertext_keep_until => (v_item->>'ciphertext_keep_until')::timestamptz,
          p_find_existing => p_unique_tokens,
          -- a merchant server's tokenization: no card-fields session, no pending details, no decline counters
          p_pending_card_sealed => null,
          p_pending_card_key_sealed => null,
          p_pending_cvc_sealed => null,
          p_pending_expires_at => null,
          p_session_id => null,
          p_publishable_key => null,
          p_session_limit => null,
          p_shopper_ip => null,
          p_decline_keys => null,
          p_decline_limits => null,
          p_decline_window => null,
          -- the batch's results are the items' answers
          p_idempotency_scope => null,
          p_idempotency_key => null,
          p_response_status => null,
          p_response_body => null,
          p_actor => p_actor,
          p_audit_id => v_item->>'audit_id',
          p_verification_audit_id => null,
          p_verification_outcome => null,
          p_verification_code => null,
          p_client_ip => p_client_ip,
          p_request_id => p_request_id);
      exception when others then
        if sqlstate not like 'TV%' then
          raise;
        end if;
        v_outcome := 'refused:' || sqlstate;
      end;
    end if;
    v_outcomes := v_outcomes || jsonb_build_object(v_item->>'item_index', v_outcome);
  end loop;
  return v_outcomes;
end;
$$;

-- tessera_write_batch_chunk: a whole chunk of a token batch in one call —
-- its tokens (tessera_create_batch_tokens, the batch's network tokens
-- deferred to its end), then each item's result, the batch's counts and the
-- failed items' audit entries (tessera_record_batch_results) — so a chunk
-- whose items need nothing more is one statement: on PGlite a round trip to
-- the database thread costs about what an item's own work does, and a
-- chunk was five of them (begin, the setting, two calls, commit).
--
-- An item tessera_create_token answered 'existing:<token>' (unique tokens)
-- is refreshed by the caller, in the same transaction: then nothing is
-- recorded here and the answers are returned, for the caller to finish as
-- tessera_create_batch_tokens' caller does. With p_finish (the call is its
-- own transaction) such an answer is an error instead. Returns null when
-- the chunk is finished.

create or replace function tessera_write_batch_chunk(
  p_batch_id text,
  p_merchant_id text,
  p_unique_tokens boolean,
  -- as tessera_create_batch_tokens
  p_together boolean,
  p_items jsonb,
  -- the results of the items that failed before (their JWE did not open, their card was refused), as
  -- tessera_record_batch_results takes them
  p_failed jsonb,
  -- {"<SQLSTATE>": {error_code, error_message, error_param}}: the result of an item tessera_create_token refused so;
  -- its audit entry takes the id its token.created entry would have had
  p_refusals jsonb,
  p_finish boolean,
  p_actor text,
  p_client_ip text,
  p_request_id text
) returns jsonb
language plpgsql
as $$
declare
  v_outcomes jsonb;
  v_results jsonb;
begin
  -- The batch requests its tokens' network tokens itself, at its end (server/token-batches/complete.ts).
  perform set_config('tessera.defer_network_tokens', 'on', true);
  v_outcomes := tessera_create_batch_tokens(p_batch_id, p_merchant_id, p_unique_tokens, p_together, p_items, p_actor, p_client_ip, p_request_id);
  if exists (select 1 from jsonb_each_text(v_outcomes) as o
              where o.value not in ('created', 'skipped') and not (starts_with(o.value, 'refused:') and p_refusals ? substr(o.value, 9))) then
    if p_finish then
      raise exception 'token batch %: a chunk written as one statement had an outcome to finish: %', p_batch_id, v_outcomes;
    end if;
    return v_outcomes;
  end if;

  select coalesce(jsonb_agg(r order by (r->>'item_index')::integer), '[]'::jsonb) into v_results
    from (select f as r from jsonb_array_elements(p_failed) as f
          union all
          select case when o.value = 'created'
                   then jsonb_build_object('item_index', (i->>'item_index')::integer, 'state', 'succeeded', 'token', i->>'token',
                                           'brand', i->'card'->>'brand', 'last4', i->'card'->>'last4',
                                           'exp_month', (i->'card'->>'exp_month')::integer, 'exp_year', (i->'card'->>'exp_year')::integer)
                   else jsonb_build_object('item_index', (i->>'item_index')::integer, 'state', 'failed', 'audit_id', i->>'audit_id')
                        || (p_refusals -> substr(o.value, 9))
                 end
            from jsonb_array_elements(p_items) as i
            join jsonb_each_text(v_outcomes) as o on o.key = i->>'item_index'
           where o.value <> 'skipped') as results;
  perform tessera_record_batch_results(p_batch_id, p_merchant_id, v_results, p_actor, p_client_ip, p_request_id);
  return null;
end;
$$;
