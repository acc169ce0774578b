-- tessera_audit_chain_trigger: every audit entry, whichever statement writes
-- it (the vault's functions, its services, the error handler), is chained on
-- insert; and the vault never updates, deletes or truncates an entry, so any
-- of those is refused. (Whoever owns the table can drop the guard;
-- `GET /v1/audit/verify` still finds what they changed.)
--
-- Functions are applied after migrations, so the trigger, and the one-time
-- chaining of the entries written before the chain existed, live here with
-- their function.

create or replace function tessera_audit_chain_trigger() returns trigger
language plpgsql
as $$
begin
  if tg_op <> 'INSERT' then
    raise exception using errcode = 'insufficient_privilege', message = 'audit_events is append-only: entries are never changed or removed';
  end if;
  if new.client_ip is null or new.request_id is null then
    raise exception using errcode = 'not_null_violation', message = 'an audit entry must record its client IP and request id';
  end if;
  if new.merchant_id is not null then
    -- The foreign key check takes this lock after the row is in; taking it
    -- before the chain keeps the chain the last lock of the transaction.
    perform 1 from merchants where id = new.merchant_id for key share;
  end if;
  new := tessera_audit_link(new);
  return new;
end;
$$;

drop trigger if exists audit_events_chain on audit_events;
drop trigger if exists audit_events_append_only on audit_events;
drop trigger if exists audit_events_no_truncate on audit_events;

-- The upgrade that brought the chain: entries written before it are chained
-- once, oldest first. Only while no chain exists yet, so an entry slipped in
-- later with the trigger disabled is reported by verification, never chained.
do $$
declare
  v_entry audit_events;
begin
  if exists (select 1 from audit_chain_heads) then
    return;
  end if;
  for v_entry in select * from audit_events where hash is null order by seq loop
    v_entry := tessera_audit_link(v_entry);
    update audit_events
       set chain = v_entry.chain, chain_seq = v_entry.chain_seq, prev_hash = v_entry.prev_hash, hash = v_entry.hash
     where seq = v_entry.seq;
  end loop;
end;
$$;

create trigger audit_events_chain before insert on audit_events
  for each row execute function tessera_audit_chain_trigger();
create trigger audit_events_append_only before update or delete on audit_events
  for each row execute function tessera_audit_chain_trigger();
create trigger audit_events_no_truncate before truncate on audit_events
  for each statement execute function tessera_audit_chain_trigger();
