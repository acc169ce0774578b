-- tessera_create_token: writes a new token in one statement — the session
-- count, the replay record, the token, its audit entries and the idempotency
-- record — so the tokenize hot path is one round trip, and a refusal (raised
-- with a TV0xx SQLSTATE, see server/storage/functions.ts) rolls all of it back.

create or replace function tessera_create_token(
  p_merchant_id text,
  p_token text,
  p_reusable boolean,
  p_customer text,
  p_decline_duplicates boolean,
  p_brand text,
  p_last4 text,
  p_exp_month integer,
  p_exp_year integer,
  p_cardholder_name text,
  p_fingerprint text,
  p_card_sealed bytea,
  p_data_key_version integer,
  p_cvc_sealed bytea,
  p_cvc_expires_at timestamptz,
  p_expires_at timestamptz,
  p_created_at timestamptz,
  -- replay protection: the SHA-256 of the JWE and how long to remember it
  p_ciphertext_hash bytea,
  p_ciphertext_keep_until timestamptz,
  -- unique tokens: return 'existing:<token>' instead of inserting when the card has a live token
  p_find_existing boolean,
  -- card fields: the session to count the token against (null from a merchant server)
  p_session_id text,
  p_publishable_key text,
  p_session_limit integer,
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
  p_request_id text
) returns text
language plpgsql
as $$
declare
  v_existing text;
  v_session_seconds_left integer;
begin
  if p_session_id is not null then
    update sessions set tokens_created = tokens_created + 1
     where id = p_session_id and publishable_key = p_publishable_key
       and expires_at > now() and tokens_created < p_session_limit;
    if not found then
      select ceil(extract(epoch from expires_at - now()))::integer into v_session_seconds_left
        from sessions
       where id = p_session_id and publishable_key = p_publishable_key and expires_at > now();
      if v_session_seconds_left is null then
        raise exception using errcode = 'TV004', message = 'session_invalid';
      end if;
      -- the detail is the session's remaining lifetime, for Retry-After
      raise exception using errcode = 'TV005', message = 'session_exhausted', detail = v_session_seconds_left::text;
    end if;
  end if;

  insert into used_ciphertexts (hash, expires_at) values (p_ciphertext_hash, p_ciphertext_keep_until)
  on conflict (hash) do nothing;
  if not found then
    raise exception using errcode = 'TV001', message = 'replayed_ciphertext';
  end if;

  -- One tokenization per card and merchant at a time, so the duplicate and unique checks hold under concurrency.
  perform pg_advisory_xact_lock(hashtextextended(p_merchant_id || '/' || p_fingerprint, 0));

  if exists (
    select 1 from tokens
     where merchant_id = p_merchant_id and fingerprint = p_fingerprint and decline_duplicates
       and deleted_at is null and (reusable or (used_at is null and expires_at > now()))
  ) then
    raise exception using errcode = 'TV002', message = 'duplicate_card';
  end if;

  if p_find_existing then
    select token into v_existing from tokens
     where merchant_id = p_merchant_id and fingerprint = p_fingerprint
       and deleted_at is null and (reusable or (used_at is null and expires_at > now()))
     order by created_at
     limit 1;
    if v_existing is not null then
      return 'existing:' || v_existing;
    end if;
  end if;

  insert into tokens (merchant_id, token, reusable, customer, decline_duplicates, brand, last4, exp_month, exp_year,
                      cardholder_name, fingerprint, card_sealed, data_key_version, cvc_sealed, cvc_expires_at,
                      expires_at, created_at, updated_at)
  values (p_merchant_id, p_token, p_reusable, p_customer, p_decline_duplicates, p_brand, p_last4, p_exp_month, p_exp_year,
          p_cardholder_name, p_fingerprint, p_card_sealed, p_data_key_version, p_cvc_sealed, p_cvc_expires_at,
          p_expires_at, p_created_at, p_created_at)
  on conflict (merchant_id, token) do nothing;
  if not found then
    raise exception using errcode = 'TV003', message = 'token_value_taken';
  end if;

  if p_idempotency_key is not null then
    update idempotency_keys set response_status = p_response_status, response_body = p_response_body
     where scope = p_idempotency_scope and key = p_idempotency_key;
  end if;

  -- Last: an audit entry locks its merchant's chain until commit (audit_chain_link.sql).
  insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id)
  values (p_audit_id, p_merchant_id, p_actor, 'token.created', 'succeeded', p_token, p_client_ip, p_request_id);
  if p_verification_audit_id is not null then
    insert into audit_events (id, merchant_id, actor, action, outcome, code, token, client_ip, request_id)
    values (p_verification_audit_id, p_merchant_id, p_actor, 'token.verified', p_verification_outcome, p_verification_code, p_token,
            p_client_ip, p_request_id);
  end if;
  return 'created';
end;
$$;
