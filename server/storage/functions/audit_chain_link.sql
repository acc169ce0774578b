-- tessera_audit_link: puts an audit entry at the end of its chain — one chain
-- per merchant, and 'operator' for entries without one — and returns it with
-- chain, chain_seq, prev_hash and hash set. It locks the chain's head row
-- until the transaction ends, so entries of one chain are numbered and linked
-- one at a time (the next writer waits for this one to commit or roll back,
-- and a rollback takes the number back with it: no gaps).
--
-- Lock order: this is the last lock a transaction that writes audit entries
-- takes (entries are written last; see docs/decisions.md, "Audit log"), so a
-- transaction holding a chain never waits for anything but its commit.

create or replace function tessera_audit_link(p_entry audit_events) returns audit_events
language plpgsql
as $$
declare
  v_head audit_chain_heads%rowtype;
begin
  p_entry.chain := coalesce(p_entry.merchant_id, 'operator');
  select * into v_head from audit_chain_heads where chain = p_entry.chain for update;
  if not found then
    insert into audit_chain_heads (chain) values (p_entry.chain) on conflict (chain) do nothing;
    select * into v_head from audit_chain_heads where chain = p_entry.chain for update;
  end if;
  p_entry.chain_seq := v_head.seq + 1;
  p_entry.prev_hash := v_head.hash;
  p_entry.hash := tessera_audit_entry_hash(p_entry);
  update audit_chain_heads set seq = p_entry.chain_seq, hash = p_entry.hash where chain = p_entry.chain;
  return p_entry;
end;
$$;
