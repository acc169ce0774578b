-- A hash chain over the audit entries, so an edited or removed entry is
-- detected (PCI DSS 10.3.4). The chain itself — its canonical form, the link,
-- the trigger, and the one-time chaining of the entries written before this
-- migration — is code, in server/storage/functions/audit_chain_*.sql.

alter table audit_events
  -- 'operator' for entries without a merchant, else the merchant id
  add column chain text,
  -- 1, 2, 3, … within the chain, with no gap
  add column chain_seq bigint,
  -- the hash of the chain's previous entry (32 zero bytes before the first)
  add column prev_hash bytea,
  -- SHA-256 of this entry's canonical form, prev_hash included
  add column hash bytea;
create unique index audit_events_chain on audit_events (chain, chain_seq);

-- The last entry of each chain. An insert locks its chain's row until commit,
-- so entries of one chain are numbered and linked one after the other; a
-- removed last entry shows as the head being ahead of the entries.
create table audit_chain_heads (
  chain text primary key,
  seq bigint not null default 0,
  hash bytea not null default decode(repeat('00', 32), 'hex')
);
