-- tessera_update_token: applies one item of a bulk update (PATCH /v1/tokens)
-- in one statement: replay record, the card's advisory locks, the token, its
-- audit entry and its idempotency record. A refusal raises a TV0xx SQLSTATE
-- (server/storage/functions.ts), so nothing of the item is kept. Returns the
-- token record as json text.

create or replace function tessera_update_token(
  p_merchant_id text,
  p_token text,
  -- null: unchanged
  p_reusable boolean,
  p_decline_duplicates boolean,
  -- the expiry of a reusable token made single-use
  p_single_use_expires_at timestamptz,
  -- the new card, all fields null when the item carries none
  p_card tessera_card_details,
  p_ciphertext_hash bytea,
  p_ciphertext_keep_until timestamptz,
  -- the merchant has unique tokens: a card number may have one live token only
  p_unique_tokens boolean,
  p_audit_id text,
  p_actor text,
  -- the claim to record the item against (null without Idempotency-Key)
  p_idempotency_scope text,
  p_idempotency_key text,
  p_idempotency_reference text,
  p_position integer,
  -- where the request came from, recorded with the audit entry
  p_client_ip text,
  p_request_id text
) returns text
language plpgsql
as $$
declare
  v_fingerprint text;
  v_lock bigint;
  v_row tokens%rowtype;
  v_record text;
begin
  if p_idempotency_key is not null then
    -- First, so that a second run of the same item (a retry racing the request
    -- it retries) waits for the first and then stops here instead of applying it twice.
    insert into idempotency_bulk_items (scope, key, reference, position)
    values (p_idempotency_scope, p_idempotency_key, p_idempotency_reference, p_position)
    on conflict do nothing;
    if not found then
      raise exception using errcode = 'TV008', message = 'item_already_applied';
    end if;
  end if;

  if p_card.card_sealed is not null then
    insert into used_ciphertexts (hash, expires_at) values (p_ciphertext_hash, p_ciphertext_keep_until)
    on conflict (hash) do nothing;
    if not found then
      raise exception using errcode = 'TV001', message = 'replayed_ciphertext';
    end if;
  end if;

  select fingerprint into v_fingerprint from tokens
   where merchant_id = p_merchant_id and token = p_token and tessera_token_readable(tokens);
  if not found then
    raise exception using errcode = 'TV006', message = 'token_not_found';
  end if;

  -- Serialise with tokenizations of the old card and the new one (the locks
  -- tessera_create_token takes), in a fixed order so two updates cannot deadlock.
  for v_lock in
    select distinct hashtextextended(p_merchant_id || '/' || f, 0)
      from unnest(array[v_fingerprint, p_card.fingerprint]) as f
     where f is not null
     order by 1
  loop
    perform pg_advisory_xact_lock(v_lock);
  end loop;

  select * into v_row from tokens
   where merchant_id = p_merchant_id and token = p_token and tessera_token_readable(tokens)
     for update;
  if not found then
    raise exception using errcode = 'TV006', message = 'token_not_found';
  end if;
  if v_row.fingerprint <> v_fingerprint then
    -- Its card changed between the two reads: hold that card's lock too.
    perform pg_advisory_xact_lock(hashtextextended(p_merchant_id || '/' || v_row.fingerprint, 0));
  end if;

  -- A spent single-use token is a record of its payment, not a card to update.
  if not v_row.reusable and v_row.used_at is not null then
    raise exception using errcode = 'TV007', message = 'token_used';
  end if;

  if p_card.fingerprint is not null and p_card.fingerprint <> v_row.fingerprint then
    if exists (
      select 1 from tokens
       where merchant_id = p_merchant_id and fingerprint = p_card.fingerprint and token <> p_token
         and (decline_duplicates or p_unique_tokens)
         and tessera_token_chargeable(tokens)
    ) then
      raise exception using errcode = 'TV002', message = 'duplicate_card';
    end if;
  end if;

  update tokens set
    reusable = coalesce(p_reusable, reusable),
    expires_at = case
      when coalesce(p_reusable, reusable) then null
      when reusable then p_single_use_expires_at
      else expires_at
    end,
    decline_duplicates = coalesce(p_decline_duplicates, decline_duplicates),
    brand = coalesce(p_card.brand, brand),
    last4 = coalesce(p_card.last4, last4),
    exp_month = coalesce(p_card.exp_month, exp_month),
    exp_year = coalesce(p_card.exp_year, exp_year),
    cardholder_name = coalesce(p_card.cardholder_name, cardholder_name),
    fingerprint = coalesce(p_card.fingerprint, fingerprint),
    card_sealed = coalesce(p_card.card_sealed, card_sealed),
    card_key_sealed = case when p_card.card_sealed is null then card_key_sealed else p_card.card_key_sealed end,
    data_key_version = case when p_card.card_sealed is null then data_key_version else p_card.data_key_version end,
    -- a new card brings its own CVC, or none: the old one belongs to the old card
    cvc_sealed = case when p_card.card_sealed is null then cvc_sealed else p_card.cvc_sealed end,
    cvc_bucket = case when p_card.card_sealed is null then cvc_bucket else p_card.cvc_bucket end,
    cvc_expires_at = case when p_card.card_sealed is null then cvc_expires_at else p_card.cvc_expires_at end,
    -- the card the merchant gives is the current one
    pan_outdated_at = case when p_card.card_sealed is null then pan_outdated_at end,
    updated_at = now()
  where merchant_id = p_merchant_id and token = p_token
  returning tessera_token_record(tokens)::text into v_record;

  -- The merchant set the card: details a shopper typed and nobody proved yet are void.
  if p_card.card_sealed is not null then
    delete from token_pending_cards where merchant_id = p_merchant_id and token = p_token;
  end if;

  if p_idempotency_key is not null then
    update idempotency_bulk_items set token_record = v_record
     where scope = p_idempotency_scope and key = p_idempotency_key
       and reference = p_idempotency_reference and position = p_position;
  end if;

  -- Last: an audit entry locks its merchant's chain until commit (audit_chain_link.sql).
  insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
  values (p_audit_id, p_merchant_id, p_actor, 'token.updated', 'succeeded', p_token, p_client_ip, p_request_id,
          'token.updated', v_record::jsonb);
  return v_record;
end;
$$;
