-- tessera_payment_batch_changes: writes what a chunk of a payment batch's
-- captures, voids and refunds did (server/payment-batches/changes.ts), in the
-- transaction that locked the chunk's items and payments and decided each
-- item by the rules of its own request: each changed payment as the chunk
-- left it, the refunds made, every item's outcome, and the batch's counts.
-- The audit entries (the events) are written after it by the caller, last.
--
-- Only items still pending are written; an item already done (by a run whose
-- lease ran out) refuses the whole chunk with TV008, rolling back its
-- changes too: no operation is applied twice. One call, so its statements'
-- plans are kept for the session (planning an ad-hoc statement on PGlite
-- costs more than running it).

create or replace function tessera_payment_batch_changes(
  p_batch_id text,
  p_merchant_id text,
  -- one object per changed payment: id, status, amount_captured, amount_refunded
  p_payments jsonb,
  -- one object per refund made: id, payment_id, amount
  p_refunds jsonb,
  -- one object per item: item_index, state ('succeeded' or 'failed'), and
  -- payment, status, refund or error_code, error_message, error_param
  p_results jsonb
) returns integer
language plpgsql
as $$
declare
  v_payment record;
  v_result record;
  v_recorded integer := 0;
  v_succeeded integer := 0;
begin
  -- Row by row by primary key: a join with the chunk's rows would be planned
  -- as a scan of every payment of the merchant and every item of the batch.
  for v_payment in select * from jsonb_to_recordset(p_payments) as c(id text, status text, amount_captured bigint, amount_refunded bigint) loop
    update payments
       set status = v_payment.status, amount_captured = v_payment.amount_captured, amount_refunded = v_payment.amount_refunded, updated_at = now()
     where merchant_id = p_merchant_id and id = v_payment.id;
  end loop;

  insert into refunds (merchant_id, id, payment_id, amount)
  select p_merchant_id, r.id, r.payment_id, r.amount
    from jsonb_to_recordset(p_refunds) as r(id text, payment_id text, amount bigint);

  for v_result in
    select * from jsonb_to_recordset(p_results)
      as r(item_index integer, state text, payment text, status text, refund text, error_code text, error_message text, error_param text)
  loop
    update payment_batch_items
       set state = v_result.state, result_payment = v_result.payment, result_status = v_result.status, refund = v_result.refund,
           error_code = v_result.error_code, error_message = v_result.error_message, error_param = v_result.error_param, processed_at = now()
     where batch_id = p_batch_id and item_index = v_result.item_index and state = 'pending';
    if not found then
      raise exception using errcode = 'TV008', message = 'item_already_applied';
    end if;
    v_recorded := v_recorded + 1;
    if v_result.state = 'succeeded' then
      v_succeeded := v_succeeded + 1;
    end if;
  end loop;

  update payment_batches
     set processed = processed + v_recorded, succeeded = succeeded + v_succeeded, failed = failed + v_recorded - v_succeeded, updated_at = now()
   where id = p_batch_id;
  return v_recorded;
end;
$$;
