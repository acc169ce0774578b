-- tessera_lock_cards: takes, for a batch chunk's transaction and before any
-- of its audit entries, the locks its tokenizations will take: each card's
-- advisory lock (the one tessera_create_token takes), in the fixed order
-- tessera_update_token uses, and with unique tokens the rows of the cards'
-- live tokens (which a returned token's refresh updates). An audit entry
-- holds its merchant's chain until commit; a chunk that took these locks
-- only later, one item at a time, could wait for a tokenization or a
-- payment that itself waits for that chain.

create or replace function tessera_lock_cards(
  p_merchant_id text,
  p_fingerprints text[],
  p_unique_tokens boolean
) returns integer
language plpgsql
as $$
declare
  v_lock bigint;
  v_locked integer := 0;
begin
  for v_lock in
    select distinct hashtextextended(p_merchant_id || '/' || f, 0)
      from unnest(p_fingerprints) as f
     order by 1
  loop
    perform pg_advisory_xact_lock(v_lock);
    v_locked := v_locked + 1;
  end loop;
  if p_unique_tokens then
    perform 1 from tokens
      where merchant_id = p_merchant_id and fingerprint = any(p_fingerprints) and tessera_token_chargeable(tokens)
      order by token
      for update;
  end if;
  return v_locked;
end;
$$;
