-- tessera_record_batch_results: records the outcomes of a token batch chunk
-- in the transaction that made its tokens (after tessera_create_batch_tokens,
-- which locked the batch): each item's result with its JWE erased, the
-- batch's counts, and, last, the audit entry of each failed item (a refused
-- tokenization, as POST /v1/tokens would have recorded it). Only items still
-- pending are written. One call, so its statements' plans are kept for the
-- session (planning an ad-hoc statement on PGlite costs more than running it).

create or replace function tessera_record_batch_results(
  p_batch_id text,
  p_merchant_id text,
  -- one object per item: item_index, state ('succeeded' or 'failed'), and
  -- token, brand, last4, exp_month, exp_year or error_code, error_message,
  -- error_param, audit_id
  p_results jsonb,
  p_actor text,
  p_client_ip text,
  p_request_id text
) returns integer
language plpgsql
as $$
declare
  v_result jsonb;
  v_succeeded integer := 0;
  v_failed integer := 0;
  v_refused jsonb := '[]'::jsonb;
begin
  for v_result in select r from jsonb_array_elements(p_results) as r loop
    update token_batch_items
       set state = v_result->>'state', card = null,
           token = v_result->>'token', brand = v_result->>'brand', last4 = v_result->>'last4',
           exp_month = (v_result->>'exp_month')::integer, exp_year = (v_result->>'exp_year')::integer,
           error_code = v_result->>'error_code', error_message = v_result->>'error_message', error_param = v_result->>'error_param',
           processed_at = now()
     where batch_id = p_batch_id and item_index = (v_result->>'item_index')::integer and state = 'pending';
    if found then
      if v_result->>'state' = 'succeeded' then
        v_succeeded := v_succeeded + 1;
      else
        v_failed := v_failed + 1;
        v_refused := v_refused || jsonb_build_array(v_result);
      end if;
    end if;
  end loop;

  update token_batches
     set processed = processed + v_succeeded + v_failed, succeeded = succeeded + v_succeeded, failed = failed + v_failed, updated_at = now()
   where id = p_batch_id;

  -- Last: an audit entry locks its merchant's chain until commit (audit_chain_link.sql).
  insert into audit_events (id, merchant_id, actor, action, outcome, code, client_ip, request_id)
  select r->>'audit_id', p_merchant_id, p_actor, 'token.created', 'failed', r->>'error_code', p_client_ip, p_request_id
    from jsonb_array_elements(v_refused) as r;
  return v_succeeded + v_failed;
end;
$$;
