-- tessera_create_batch_tokens: writes a chunk of a token batch's items in one
-- call (one round trip, which on PGlite costs as much as the work): each item
-- through tessera_create_token, as a merchant server's POST /v1/tokens would,
-- in a subtransaction of its own so that a refusal (a replay, a declined
-- duplicate) is that item's outcome and the others go on.
--
-- First it locks the batch (one run of a batch at a time, even when a run
-- whose job lease ran out is still going) and, before any audit entry takes
-- the merchant's chain, every lock its items' tokenizations will take
-- (tessera_lock_cards). Items already processed (by such another run) are
-- skipped. Answers {"<item_index>": outcome}: tessera_create_token's answer
-- ('created', or 'existing:<token>' with unique tokens, which the caller
-- refreshes in the same transaction), 'refused:<SQLSTATE>', or 'skipped'.

create or replace function tessera_create_batch_tokens(
  p_batch_id text,
  p_merchant_id text,
  p_unique_tokens boolean,
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

  for v_item in select i from jsonb_array_elements(p_items) as i loop
    if not (v_item->>'item_index')::integer = any(v_pending) then
      v_outcome := 'skipped';
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
