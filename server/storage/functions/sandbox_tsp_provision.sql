-- tessera_sandbox_tsp_provision: the sandbox networks' side of provisioning
-- requests, a group of them in one statement (server/network-tokens/
-- sandbox.ts, where the rules are): each request answered before gets its
-- token again; each other that makes a token (`make`) writes it (two
-- requests for one reused token, here or in another process at once: one
-- row, the later insert does nothing) and the request id it answers from
-- now on. Answers each request's token row by its place in p_requests (`n`);
-- a request whose token another transaction inserted after this statement
-- began is not answered (the caller reads it again).
--
-- The sandbox's tables are read a request at a time (`lateral … limit 1`, a
-- key probe each), not joined to the input: the planner counts 100 rows for
-- jsonb_to_recordset whatever the group holds and hashed the join over a
-- scan of every token and request the sandbox ever saw. Planned once per
-- connection, never by scanning a table, for the reasons of
-- tessera_claim_jobs.

create or replace function tessera_sandbox_tsp_provision(p_requests jsonb)
returns table (
  n integer, network text, token_id text, status text, active_at timestamptz, token_exp_month integer, token_exp_year integer,
  pan_last4 text, pan_exp_month integer, pan_exp_year integer, par text, card_art_id text, issuer_name text)
language plpgsql
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
begin
  return query
    with input as (
      select * from jsonb_to_recordset(p_requests) as i(n integer, network text, request_id text, make boolean, token_id text, requestor text,
        reuse_key text, status text, active_at timestamptz, token_exp_month integer, token_exp_year integer, pan_last4 text, pan_exp_month integer,
        pan_exp_year integer, par text, card_art_id text, issuer_name text)
    ), seen as (
      -- The request's token id first, then its token by both keys: a generic plan of the two tables joined, made on
      -- empty tables, may probe the tokens by network alone and filter every token of that network (EXPLAIN of the
      -- join prepared on a fresh vault); this form has no such plan.
      select i.n, t.* from input i cross join lateral (
        select t.network, t.token_id, t.status, t.active_at, t.token_exp_month, t.token_exp_year, t.pan_last4, t.pan_exp_month, t.pan_exp_year,
               t.par, t.card_art_id, t.issuer_name
          from sandbox_tsp_tokens t
         where t.network = i.network
           and t.token_id = (select r.token_id from sandbox_tsp_requests r where r.network = i.network and r.request_id = i.request_id)
         limit 1) t
    ), fresh as (
      select * from input i where i.make and not exists (select 1 from seen s where s.n = i.n)
    ), made as (
      -- In key order, so that two processes inserting overlapping groups wait on each other in one order.
      insert into sandbox_tsp_tokens as t (network, token_id, requestor, reuse_key, status, active_at, token_exp_month, token_exp_year,
                                           pan_last4, pan_exp_month, pan_exp_year, par, card_art_id, issuer_name)
      select f.network, f.token_id, f.requestor, f.reuse_key, f.status, f.active_at, f.token_exp_month, f.token_exp_year,
             f.pan_last4, f.pan_exp_month, f.pan_exp_year, f.par, f.card_art_id, f.issuer_name
        from fresh f order by f.network, f.token_id
      on conflict do nothing
      returning t.network, t.token_id, t.status, t.active_at, t.token_exp_month, t.token_exp_year, t.pan_last4, t.pan_exp_month, t.pan_exp_year,
                t.par, t.card_art_id, t.issuer_name
    ), asked as (
      insert into sandbox_tsp_requests (network, request_id, token_id)
      select f.network, f.request_id, f.token_id from fresh f order by f.network, f.request_id
      on conflict do nothing
    )
    select s.n, s.network, s.token_id, s.status, s.active_at, s.token_exp_month, s.token_exp_year, s.pan_last4, s.pan_exp_month, s.pan_exp_year,
           s.par, s.card_art_id, s.issuer_name
      from seen s
    union all
    select f.n, m.network, m.token_id, m.status, m.active_at, m.token_exp_month, m.token_exp_year, m.pan_last4, m.pan_exp_month, m.pan_exp_year,
           m.par, m.card_art_id, m.issuer_name
      from fresh f join made m on m.network = f.network and m.token_id = f.token_id
    union all
    select f.n, t.network, t.token_id, t.status, t.active_at, t.token_exp_month, t.token_exp_year, t.pan_last4, t.pan_exp_month, t.pan_exp_year,
           t.par, t.card_art_id, t.issuer_name
      from fresh f cross join lateral (
        select t.* from sandbox_tsp_tokens t where t.network = f.network and t.token_id = f.token_id limit 1) t;
end;
$$;
