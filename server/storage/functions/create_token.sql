-- tessera_create_token: writes a new token in one statement — the session
-- check and count, the Idempotency-Key's claim (or its replay), the transport
-- key's check, the replay record, the token, its audit entries and the
-- idempotency record — so the tokenize hot path is one round trip, and a
-- refusal (raised with a TV0xx SQLSTATE, see server/storage/functions.ts)
-- rolls all of it back.
--
-- The checks run in the order the API answers them: session, then
-- Idempotency-Key (a stored response is replayed: 'replayed:<status>:<body>',
-- nothing else done), then the key the card was encrypted to (p_kid: still
-- allowed to decrypt, judged here by the one store every vault node shares,
-- in the transaction that writes the token), then the card's own checks.
--
-- Returns 'created' ('created:<network token id>' when p_network_token_in_memory
-- and the merchant's background network token went in: the caller provisions
-- it, tessera_network_token_background), or for a merchant with unique tokens whose card already
-- has a live token:
-- - 'existing:<token>' from a merchant server (the caller refreshes that
--   token in the same transaction);
-- - 'pending:<token>' from the card fields (p_pending_card_sealed given): the
--   new details wait in token_pending_cards until an approved authorization
--   or verification proves them, and the stored response names that token.
--   Both ends take this one statement, so answer and timing look the same.

create or replace function tessera_create_token(
  p_merchant_id text,
  p_token text,
  p_reusable boolean,
  p_customer text,
  p_decline_duplicates boolean,
  -- the new card's details (server/storage/migrations/010_card_details_type.sql)
  p_card tessera_card_details,
  p_expires_at timestamptz,
  p_created_at timestamptz,
  -- replay protection: the hash of the JWE's decoded bytes and how long to remember it
  p_ciphertext_hash bytea,
  p_ciphertext_keep_until timestamptz,
  -- unique tokens: answer the card's live token instead of inserting
  p_find_existing boolean,
  -- card fields: the details sealed for a pending update, used when the card already has a token
  p_pending_card_sealed bytea,
  p_pending_card_key_sealed bytea,
  p_pending_cvc_sealed bytea,
  p_pending_expires_at timestamptz,
  -- card fields: the session to count the token against (null from a merchant server), and the shopper's address
  p_session_id text,
  p_publishable_key text,
  p_session_limit integer,
  p_shopper_ip text,
  -- card-testing limits: refuse when one of these decline counters has reached its limit in the current window
  p_decline_keys text[],
  p_decline_limits integer[],
  p_decline_window timestamptz,
  -- the idempotency claim to complete with the response (null without Idempotency-Key)
  p_idempotency_scope text,
  p_idempotency_key text,
  p_response_status integer,
  p_response_body text,
  -- the audit log: who tokenizes (redacted key), and the entry of a verification when one ran
  p_actor text,
  p_audit_id text,
  p_verification_audit_id text,
  p_verification_outcome text,
  p_verification_code text,
  -- where the request came from, recorded with its audit entries
  p_client_ip text,
  p_request_id text,
  -- a card keyed in by a merchant's agent (the fields' moto mode): the token is good for MOTO payments only
  p_moto boolean default false,
  -- the transport key the card was opened with (null: the caller checked it)
  p_kid text default null,
  -- set when the caller has not claimed the Idempotency-Key: this call claims it (server/idempotency/idempotency.ts,
  -- IdempotencyStore.runInStatement), with the request's hash, the acquirer reference a new record gets, the
  -- claiming process, how long the record is kept, and after how long a claim without a response is abandoned
  p_idempotency_request_hash bytea default null,
  p_idempotency_reference text default null,
  p_idempotency_claimed_by text default null,
  p_idempotency_keep_seconds integer default null,
  p_idempotency_abandoned_seconds integer default null,
  -- the caller provisions the token's background network token itself, in memory (network_token_background.sql)
  p_network_token_in_memory boolean default false
) returns text
language plpgsql
as $$
declare
  v_existing text;
  v_session record;
  v_claim record;
  v_record jsonb;
  v_network_token text;
begin
  if p_session_id is not null then
    -- Locked until commit, so the count below cannot pass the limit; counted only once no replay answers instead.
    select tokens_created, ceil(extract(epoch from expires_at - now()))::integer as seconds_left into v_session
      from sessions
     where id = p_session_id and publishable_key = p_publishable_key and expires_at > now()
       for update;
    if not found then
      raise exception using errcode = 'TV004', message = 'session_invalid';
    end if;
    if v_session.tokens_created >= p_session_limit then
      -- the detail is the session's remaining lifetime, for Retry-After
      raise exception using errcode = 'TV005', message = 'session_exhausted', detail = v_session.seconds_left::text;
    end if;
  end if;

  if p_idempotency_request_hash is not null then
    -- Another vault process working on this key right now (this process's own requests are kept apart before
    -- they get here): 409, as a claim of its own would answer. Held until commit, so the record read below is final.
    if not pg_try_advisory_xact_lock(hashtextextended('idempotency/' || p_idempotency_scope || '/' || p_idempotency_key, 0)) then
      raise exception using errcode = 'TV013', message = 'idempotency_in_flight';
    end if;
    select request_hash, response_status, response_body,
           locked_at < now() - make_interval(secs => p_idempotency_abandoned_seconds)
             or exists (select 1 from vault_processes p where p.id = k.claimed_by and p.alive_until < now()) as abandoned
      into v_claim
      from idempotency_keys k
     where scope = p_idempotency_scope and key = p_idempotency_key and expires_at > now();
    if found then
      if v_claim.request_hash <> p_idempotency_request_hash then
        raise exception using errcode = 'TV012', message = 'idempotency_mismatch';
      end if;
      if v_claim.response_status is not null then
        return 'replayed:' || v_claim.response_status || ':' || v_claim.response_body;
      end if;
      -- Claimed by a request of the old kind (IdempotencyStore.run) that is still running.
      if not v_claim.abandoned then
        raise exception using errcode = 'TV013', message = 'idempotency_in_flight';
      end if;
    end if;
    -- The claim, as IdempotencyStore.run makes it (an abandoned or expired record taken over); answered below.
    insert into idempotency_keys (scope, key, request_hash, expires_at, reference, claimed_by)
    values (p_idempotency_scope, p_idempotency_key, p_idempotency_request_hash,
            now() + make_interval(secs => p_idempotency_keep_seconds), p_idempotency_reference, p_idempotency_claimed_by)
    on conflict (scope, key) do update
      set request_hash = excluded.request_hash, response_status = null, response_body = null,
          locked_at = now(), expires_at = excluded.expires_at, claimed_by = excluded.claimed_by, claim_token = null,
          reference = case when idempotency_keys.expires_at <= now() then excluded.reference else idempotency_keys.reference end;
  end if;

  if p_session_id is not null then
    update sessions set tokens_created = tokens_created + 1 where id = p_session_id;
  end if;

  if p_kid is not null and not exists (
    select 1 from transport_keys
     where kid = p_kid and private_key_sealed is not null and (retired_at is null or decrypt_until > now())
  ) then
    raise exception using errcode = 'TV011', message = 'unknown_kid';
  end if;

  if p_decline_keys is not null and exists (
    select 1 from decline_counters d
      join unnest(p_decline_keys, p_decline_limits) as l(key, declines_allowed) on d.key = l.key
     where d.window_start = p_decline_window and d.declines >= l.declines_allowed
  ) then
    raise exception using errcode = 'TV009', message = 'decline_velocity';
  end if;

  insert into used_ciphertexts (hash, expires_at) values (p_ciphertext_hash, p_ciphertext_keep_until)
  on conflict (hash) do nothing;
  if not found then
    raise exception using errcode = 'TV001', message = 'replayed_ciphertext';
  end if;

  -- One tokenization per card and merchant at a time, so the duplicate and unique checks hold under concurrency.
  perform pg_advisory_xact_lock(hashtextextended(p_merchant_id || '/' || p_card.fingerprint, 0));

  if exists (
    select 1 from tokens
     where merchant_id = p_merchant_id and fingerprint = p_card.fingerprint and decline_duplicates
       and tessera_token_chargeable(tokens)
  ) then
    raise exception using errcode = 'TV002', message = 'duplicate_card';
  end if;

  if p_find_existing then
    select token into v_existing from tokens
     where merchant_id = p_merchant_id and fingerprint = p_card.fingerprint and tessera_token_chargeable(tokens)
     order by created_at
     limit 1;
    if v_existing is not null and p_pending_card_sealed is null then
      return 'existing:' || v_existing;
    end if;
    if v_existing is not null then
      insert into token_pending_cards (merchant_id, token, card_sealed, card_key_sealed, data_key_version, exp_month, exp_year,
                                       cardholder_name, cvc_sealed, cvc_bucket, reusable, created_at, expires_at)
      values (p_merchant_id, v_existing, p_pending_card_sealed, p_pending_card_key_sealed, p_card.data_key_version, p_card.exp_month, p_card.exp_year,
              p_card.cardholder_name, p_pending_cvc_sealed, p_card.cvc_bucket, p_reusable, p_created_at, p_pending_expires_at)
      on conflict (merchant_id, token) do update set
        card_sealed = excluded.card_sealed, card_key_sealed = excluded.card_key_sealed, data_key_version = excluded.data_key_version,
        exp_month = excluded.exp_month, exp_year = excluded.exp_year, cardholder_name = excluded.cardholder_name,
        cvc_sealed = excluded.cvc_sealed, cvc_bucket = excluded.cvc_bucket, reusable = excluded.reusable,
        created_at = excluded.created_at, expires_at = excluded.expires_at;
      if p_idempotency_key is not null then
        -- The response was rendered for the token this call would have made; it names the card's token instead.
        update idempotency_keys set response_status = p_response_status, response_body = replace(p_response_body, p_token, v_existing)
         where scope = p_idempotency_scope and key = p_idempotency_key;
      end if;
      -- Last: an audit entry locks its merchant's chain until commit (audit_chain_link.sql).
      insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id)
      values (p_audit_id, p_merchant_id, p_actor, 'token.reused', 'succeeded', v_existing, p_client_ip, p_request_id);
      return 'pending:' || v_existing;
    end if;
  end if;

  insert into tokens (merchant_id, token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
                      cardholder_name, fingerprint, card_sealed, card_key_sealed, data_key_version, cvc_sealed, cvc_bucket,
                      cvc_expires_at, expires_at, session_id, client_ip, created_at, updated_at, moto)
  values (p_merchant_id, p_token, p_reusable, p_customer, p_decline_duplicates, p_card.brand, p_card.last4, p_card.exp_month, p_card.exp_year,
          p_card.cardholder_name, p_card.fingerprint, p_card.card_sealed, p_card.card_key_sealed, p_card.data_key_version, p_card.cvc_sealed, p_card.cvc_bucket,
          p_card.cvc_expires_at, p_expires_at, p_session_id, p_shopper_ip, p_created_at, p_created_at, p_moto)
  on conflict (merchant_id, token) do nothing
  -- The token.created event's object, as the row went in: no second read of it below.
  returning tessera_token_record(tokens)::jsonb into v_record;
  if not found then
    raise exception using errcode = 'TV003', message = 'token_value_taken';
  end if;

  if p_idempotency_key is not null then
    update idempotency_keys set response_status = p_response_status, response_body = p_response_body
     where scope = p_idempotency_scope and key = p_idempotency_key;
  end if;

  if p_network_token_in_memory then
    perform set_config('tessera.network_token_in_memory', 'on', true);
  end if;
  -- Last: an audit entry locks its merchant's chain until commit (audit_chain_link.sql).
  -- The entry is also the token.created event, with the token as it was made.
  insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
  values (p_audit_id, p_merchant_id, p_actor, 'token.created', 'succeeded', p_token, p_client_ip, p_request_id,
          'token.created', v_record);
  if p_network_token_in_memory then
    -- Read and cleared: the next token of a group statement (tessera_create_tokens) shares this transaction.
    v_network_token := nullif(current_setting('tessera.background_network_token', true), '');
    perform set_config('tessera.network_token_in_memory', '', true), set_config('tessera.background_network_token', '', true);
  end if;
  if p_verification_audit_id is not null then
    insert into audit_events (id, merchant_id, actor, action, outcome, code, token, client_ip, request_id)
    values (p_verification_audit_id, p_merchant_id, p_actor, 'token.verified', p_verification_outcome, p_verification_code, p_token,
            p_client_ip, p_request_id);
  end if;
  return coalesce('created:' || v_network_token, 'created');
end;
$$;
