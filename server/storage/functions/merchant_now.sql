-- tessera_merchant_now: the time on a merchant's sandbox clock — the
-- database's own time, plus however far the merchant advanced its clock
-- (POST /v1/sandbox/clock). A merchant that never did runs on real time.
-- What is due for a merchant (its subscriptions' charges) is due by this.

create or replace function tessera_merchant_now(p_merchant_id text) returns timestamptz
language sql
stable
as $$
  select now() + coalesce((select ahead from sandbox_clocks where merchant_id = p_merchant_id), interval '0')
$$;
