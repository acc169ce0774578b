-- tessera_audit_entry_hash: the one canonical form of an audit entry, hashed.
-- The link (audit_chain_link.sql), the chaining of old entries and
-- `GET /v1/audit/verify` all call it, so they cannot disagree.
--
-- SHA-256 over the UTF-8 text of a JSON array of strings (PostgreSQL's
-- json_build_array rendering): a version tag, the chain and the entry's place
-- in it, every column a person reads, and the previous entry's hash. The
-- time is written in UTC with microseconds, so the session's time zone
-- cannot change it. A column added to audit_events later is not covered
-- until a new version of this form names it: an event (event_type set) is
-- hashed in form v2 — the v1 text, the event's type and its object (jsonb's
-- text is canonical) —, while every other entry keeps form v1, so entries
-- written before events existed verify as they did.
--
-- PL/pgSQL rather than a SQL function: PostgreSQL cannot inline a SQL body
-- with a FROM, so it ran that body through its SQL-function executor at
-- every entry, ~12 µs more an entry on PGlite than this (docs/benchmarks.md,
-- "Routers in one layer, and the audit hash in PL/pgSQL"). The form is
-- unchanged, character for character.

create or replace function tessera_audit_entry_hash(p_entry audit_events) returns bytea
language plpgsql
stable
as $$
declare
  v1 text;
begin
  v1 := json_build_array(
    'tessera-audit-v1',
    p_entry.chain,
    p_entry.chain_seq::text,
    p_entry.seq::text,
    p_entry.id,
    p_entry.merchant_id,
    p_entry.actor,
    p_entry.action,
    p_entry.outcome,
    p_entry.code,
    p_entry.token,
    p_entry.payment_id,
    p_entry.client_ip,
    p_entry.request_id,
    to_char(p_entry.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    encode(p_entry.prev_hash, 'hex')
  )::text;
  return sha256(convert_to(case
    when p_entry.event_type is null then v1
    else json_build_array('tessera-audit-v2', v1, p_entry.event_type, p_entry.data::text)::text
  end, 'UTF8'));
end;
$$;
