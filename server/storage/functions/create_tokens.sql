-- tessera_create_tokens: the tokenizations that arrived while the one before
-- ran, written by one statement (a group commit, server/tokens/statements.ts):
-- on PGlite every statement costs its one database thread a fixed amount on
-- top of its work, and a group pays it once.
--
-- p_entries: one object per tokenization, with tessera_create_token's
-- arguments by name, without their p_ (bytes as \x… hex, times in ISO 8601).
-- Each entry is one tessera_create_token call, in order. Without
-- p_isolated the entries share the statement's transaction, and a refusal
-- (a TV0xx SQLSTATE) fails the statement as a whole, nothing written: the
-- caller sends a group so first and, on a refusal, the same group isolated
-- (server/tokens/statements.ts). With p_isolated (the default) each entry
-- is this function called for it alone, in a subtransaction of its own, so
-- an entry's refusal rolls back that entry alone and is its answer; the
-- others go on. A subtransaction an entry cost PGlite ~20–35 µs of an
-- entry's ~350 once committed (docs/benchmarks.md, "Groups as one
-- transaction"), and with no refusal in the group it buys nothing.
-- Any other error fails the statement, and the caller runs each entry alone.
--
-- Answers one object per entry, in order: {"result": <tessera_create_token's
-- answer>} or {"state": <SQLSTATE>, "message": …, "detail": …}.
--
-- First it takes the locks its entries will wait for, in the order a lone
-- tessera_create_token takes them — the sessions' rows, then the cards'
-- advisory locks, each kind in a fixed order: an entry's audit entry holds
-- its merchant's chain until commit, and a group that took these one entry
-- at a time, after that, could wait for a statement (another group on
-- PostgreSQL, a lone tokenization) that itself waits for that chain.

drop function if exists tessera_create_tokens(jsonb);
drop function if exists tessera_create_token_entry(jsonb);

create or replace function tessera_create_tokens(p_entries jsonb, p_isolated boolean default true) returns jsonb
language plpgsql
as $$
declare
  e record;
  v_entry jsonb;
  v_answers jsonb := '[]'::jsonb;
  v_detail text;
  v_lock bigint;
begin
  perform 1 from sessions
    where id in (select x->>'session_id' from jsonb_array_elements(p_entries) as x)
    order by id
    for update;
  for v_lock in
    select distinct hashtextextended((x->>'merchant_id') || '/' || (x->'card'->>'fingerprint'), 0)
      from jsonb_array_elements(p_entries) as x
     order by 1
  loop
    perform pg_advisory_xact_lock(v_lock);
  end loop;

  if p_isolated then
    -- Each entry a group of its own, together, in a subtransaction: its locks are this transaction's already.
    for v_entry in select x from jsonb_array_elements(p_entries) as x loop
      begin
        v_answers := v_answers || tessera_create_tokens(jsonb_build_array(v_entry), false);
      exception when others then
        if sqlstate not like 'TV%' then
          raise;
        end if;
        get stacked diagnostics v_detail = pg_exception_detail;
        v_answers := v_answers || jsonb_build_array(jsonb_build_object('state', sqlstate, 'message', sqlerrm, 'detail', nullif(v_detail, '')));
      end;
    end loop;
    return v_answers;
  end if;

  for e in
    select * from jsonb_to_recordset(p_entries) as x(
      merchant_id text, token text, reusable boolean, customer text, decline_duplicates boolean,
      card tessera_card_details, expires_at timestamptz, created_at timestamptz,
      ciphertext_hash bytea, ciphertext_keep_until timestamptz, find_existing boolean,
      pending_card_sealed bytea, pending_card_key_sealed bytea, pending_cvc_sealed bytea, pending_expires_at timestamptz,
      session_id text, publishable_key text, session_limit integer, shopper_ip text,
      decline_keys text[], decline_limits integer[], decline_window timestamptz,
      idempotency_scope text, idempotency_key text, response_status integer, response_body text,
      actor text, audit_id text, verification_audit_id text, verification_outcome text, verification_code text,
      client_ip text, request_id text, moto boolean, kid text,
      idempotency_request_hash bytea, idempotency_reference text, idempotency_claimed_by text,
      idempotency_keep_seconds integer, idempotency_abandoned_seconds integer, network_token_in_memory boolean)
  loop
    v_answers := v_answers || jsonb_build_array(jsonb_build_object('result', tessera_create_token(
        p_merchant_id => e.merchant_id,
        p_token => e.token,
        p_reusable => e.reusable,
        p_customer => e.customer,
        p_decline_duplicates => e.decline_duplicates,
        p_card => e.card,
        p_expires_at => e.expires_at,
        p_created_at => e.created_at,
        p_ciphertext_hash => e.ciphertext_hash,
        p_ciphertext_keep_until => e.ciphertext_keep_until,
        p_find_existing => e.find_existing,
        p_pending_card_sealed => e.pending_card_sealed,
        p_pending_card_key_sealed => e.pending_card_key_sealed,
        p_pending_cvc_sealed => e.pending_cvc_sealed,
        p_pending_expires_at => e.pending_expires_at,
        p_session_id => e.session_id,
        p_publishable_key => e.publishable_key,
        p_session_limit => e.session_limit,
        p_shopper_ip => e.shopper_ip,
        p_decline_keys => e.decline_keys,
        p_decline_limits => e.decline_limits,
        p_decline_window => e.decline_window,
        p_idempotency_scope => e.idempotency_scope,
        p_idempotency_key => e.idempotency_key,
        p_response_status => e.response_status,
        p_response_body => e.response_body,
        p_actor => e.actor,
        p_audit_id => e.audit_id,
        p_verification_audit_id => e.verification_audit_id,
        p_verification_outcome => e.verification_outcome,
        p_verification_code => e.verification_code,
        p_client_ip => e.client_ip,
        p_request_id => e.request_id,
        p_moto => coalesce(e.moto, false),
        p_kid => e.kid,
        p_idempotency_request_hash => e.idempotency_request_hash,
        p_idempotency_reference => e.idempotency_reference,
        p_idempotency_claimed_by => e.idempotency_claimed_by,
        p_idempotency_keep_seconds => e.idempotency_keep_seconds,
        p_idempotency_abandoned_seconds => e.idempotency_abandoned_seconds,
        p_network_token_in_memory => coalesce(e.network_token_in_memory, false))));
  end loop;
  return v_answers;
end;
$$;
