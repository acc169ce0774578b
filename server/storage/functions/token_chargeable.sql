-- tessera_token_chargeable: a token a payment may still be made on — not
-- deleted, and reusable, or single-use, unused and not expired. The
-- duplicate and unique-token checks look only at these.

create or replace function tessera_token_chargeable(t tokens) returns boolean
language sql
stable
as $$
  select t.deleted_at is null and (t.reusable or (t.used_at is null and t.expires_at > now()))
$$;
